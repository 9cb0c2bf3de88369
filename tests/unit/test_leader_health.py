"""``/healthz`` (served by ``metrics.serve``, read over HTTP) while the elector cannot reach the API server.

A replica cut off from the API server is not broken, and restarting it would
not help, so it stays healthy; tests/integration/test_leader_elector_end.py shows
``/healthz`` failing once the elector has ended.
"""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client
from leader_support import eventually, free_port, http_status, lease_errors, stop

from modelrelease import metrics
from modelrelease.leader import LeaderElector, LeaseConfig
from modelrelease.runner import Health


def test_healthz_stays_ok_while_the_elector_retries() -> None:
    async def scenario() -> None:
        api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{free_port()}"))
        elector = LeaderElector(api, LeaseConfig("default", "unreachable", "me", lease_duration=6, renew_period=2))
        health = Health(lambda: True)
        port = free_port()
        runner = await metrics.serve(port, healthy=health)
        election = asyncio.create_task(elector.run(), name="lease")
        health.watch(election)
        url = f"http://127.0.0.1:{port}/healthz"
        try:
            before = lease_errors()
            await eventually(lambda: lease_errors() >= before + 2 or election.done(), 30, "two failed attempts")
            assert not election.done()
            assert await http_status(url) == 200
        finally:
            await stop(election)
            await runner.cleanup()
            await api.close()

    asyncio.run(scenario())
