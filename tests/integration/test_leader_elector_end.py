"""``/healthz`` once the Lease task has ended: the replica can never lead again, so the kubelet must restart it.

The elector runs against the real API server and ends on a real exception
(a bug in what runs on election); ``/healthz`` is served by ``metrics.serve``
and read over HTTP.
"""

from __future__ import annotations

import asyncio

import pytest
from leader_support import api_client, eventually, free_port, http_status, read_lease

from devstack.testing import Cluster
from modelrelease import metrics
from modelrelease.leader import LeaderElector, LeaseConfig
from modelrelease.runner import Health

pytestmark = pytest.mark.cluster


def test_healthz_fails_once_the_elector_has_ended(cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        api = await api_client(cluster)

        def broken_callback() -> None:
            raise RuntimeError("a bug in what runs on election")

        elector = LeaderElector(
            api, LeaseConfig(namespace, "dies", "me", lease_duration=6, renew_period=2), on_elected=broken_callback
        )
        ready = asyncio.Event()
        ready.set()
        health = Health(ready.is_set)
        port = free_port()
        runner = await metrics.serve(port, healthy=health)
        url = f"http://127.0.0.1:{port}/healthz"
        try:
            assert await http_status(url) == 200
            election = asyncio.create_task(elector.run(), name="lease")
            health.watch(election)
            await eventually(election.done, 30, "the elector to end on the callback's error")
            assert isinstance(election.exception(), RuntimeError)
            assert await http_status(url) == 503
            released = await read_lease(api, namespace, "dies")
            assert released.spec.holder_identity is None, "the ended elector kept the Lease"
        finally:
            await runner.cleanup()
            await api.close()

    asyncio.run(scenario())
