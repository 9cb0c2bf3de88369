"""A thin JSON view of the API server over kubernetes-asyncio's authenticated connection.

The pod runner works on the API's own JSON (camelCase, as in manifests and
the kubelet's source) rather than the generated model classes: that keeps
status building and env expansion readable and spares the CPU of model
deserialisation for every watch event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

JSON = dict[str, Any]


USER_AGENT = "devstack-podrunner"


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client

    @classmethod
    async def from_kubeconfig(cls, path: str) -> Kube:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=path, client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        # Its own name in the API server's audit log: the default is every Python client's (the operator's too).
        api_client.user_agent = USER_AGENT
        return cls(api_client)

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = 30,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            return await self._api.call_api(
                path,
                method,
                query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ApiError(0, f"{method} {path}: {error!r}") from error

    async def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = await self._call(method, path, **kwargs)
        try:
            async with response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ApiError(0, f"{method} {path}: {error!r}") from error
        if not 200 <= response.status < 300:
            raise ApiError(response.status, text)
        return json.loads(text) if text else {}

    async def get(self, path: str, **query: Any) -> JSON:
        return await self.request("GET", path, query=query)

    async def create(self, path: str, body: JSON) -> JSON:
        return await self.request("POST", path, body=body)

    async def merge_patch(self, path: str, body: JSON) -> JSON:
        return await self.request("PATCH", path, body=body, content_type="application/merge-patch+json")

    async def delete(self, path: str, body: JSON | None = None) -> JSON:
        return await self.request("DELETE", path, body=body)

    async def watch(self, path: str, **query: Any) -> AsyncIterator[JSON]:
        """Yield watch events until the server ends the stream (its timeoutSeconds) or the connection drops."""
        response = await self._call("GET", path, query={**query, "watch": "true"}, timeout=None)
        async with response:
            if response.status != 200:
                raise ApiError(response.status, await response.text())
            while True:
                try:
                    line = await response.content.readline()
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    # The API server went away mid-stream (a restart): the caller's loop relists.
                    raise ApiError(0, f"watch {path}: {error!r}") from error
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
