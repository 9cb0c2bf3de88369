"""Fencing: a replica that knows it lost the Lease sends no write to the API server.

Why at the API client and not in each ``Kube`` method: every request the
operator makes goes through the API groups ``Kube`` builds on this client,
so one check just before a request is sent covers every write, including
the ones added to ``Kube`` later.  Reads stay allowed: a replica that does
not lead may still look.  The same place counts every request by method
(``modelrelease_api_requests_total``), which is how the requests a pass
costs are measured (``devstack.bench_scale``).

The refusal is a ``LeadershipLost`` exception, which a pass treats as "stop
here" (no retry, no error event): the scheduler runs the release again once
this replica is elected.  What fencing cannot stop is a write already in
flight when leadership lapses; the scheduler cancels a pass once the
validity runs out, and the validity ends ``renew_period`` before another
replica may take over, so such a write lands before anybody else leads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from kubernetes_asyncio import client

from modelrelease.metrics import API_REQUESTS

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LeadershipLost(Exception):
    """This replica may not write (it does not hold the Lease); the pass stops and runs again once elected."""


class FencedApiClient:
    """Stands in for an ``ApiClient``: sends a request that changes anything only while ``may_write()``."""

    def __init__(self, api_client: client.ApiClient, may_write: Callable[[], bool]) -> None:
        self._api_client = api_client
        self._may_write = may_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api_client, name)

    async def call_api(self, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() not in READ_METHODS and not self._may_write():
            path_params = kwargs.get("path_params", args[0] if args else None) or {}
            raise LeadershipLost(f"not the leader: refused {method} {_fill(resource_path, path_params)}")
        API_REQUESTS.labels(method=method.upper()).inc()
        return await self._api_client.call_api(resource_path, method, *args, **kwargs)


def fenced(api_client: client.ApiClient, may_write: Callable[[], bool]) -> client.ApiClient:
    """``api_client`` for the generated API groups, refusing writes while ``may_write()`` is false."""
    return cast(client.ApiClient, FencedApiClient(api_client, may_write))


def _fill(resource_path: str, path_params: dict[str, Any]) -> str:
    for key, value in path_params.items():
        resource_path = resource_path.replace("{" + key + "}", str(value))
    return resource_path
