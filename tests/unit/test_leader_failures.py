"""The elector outlives any number of failed attempts on the Lease, and counts them.

The failures are real: a port nobody listens on (aiohttp's
ClientConnectorError) and a server that hangs up on every connection
(ServerDisconnectedError).
"""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client
from leader_support import eventually, free_port, lease_errors, stop

from modelrelease.leader import LeaderElector, LeaseConfig


def _api(port: int) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}"))


def _elector(api: client.ApiClient) -> LeaderElector:
    return LeaderElector(api, LeaseConfig("default", "unreachable", "me", lease_duration=6, renew_period=2))


def test_an_elector_that_cannot_connect_keeps_trying_and_counts_each_failure() -> None:
    async def scenario() -> None:
        api = _api(free_port())
        elector = _elector(api)
        before = lease_errors()
        election = asyncio.create_task(elector.run())
        try:
            await eventually(lambda: lease_errors() >= before + 3 or election.done(), 30, "three failed attempts")
            assert not election.done(), f"the elector ended: {election.exception() if election.done() else ''}"
            assert not elector.is_leader()
        finally:
            await stop(election)
            await api.close()

    asyncio.run(scenario())


def test_an_elector_whose_server_hangs_up_keeps_reconnecting() -> None:
    async def scenario() -> None:
        connections = 0

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            writer.transport.abort()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        api = _api(server.sockets[0].getsockname()[1])
        elector = _elector(api)
        election = asyncio.create_task(elector.run())
        try:
            await eventually(lambda: connections >= 3 or election.done(), 30, "three connections")
            assert not election.done(), f"the elector ended: {election.exception() if election.done() else ''}"
        finally:
            await stop(election)
            await api.close()
            server.close()

    asyncio.run(scenario())
