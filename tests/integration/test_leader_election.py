"""Leader election against the real API server: validity, expiry under clock skew, network failures.

Each elector runs on a clock the test moves by hand (``ManualClock``), so
"has this much time passed" is exact; the Lease, its resourceVersions, the
network errors and ``/healthz`` are real.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client
from leader_support import (
    CountingApiClient,
    CuttableProxy,
    ManualClock,
    api_client,
    eventually,
    lease_errors,
    read_lease,
    reads_more,
    stop,
    write_lease,
)

from devstack.testing import Cluster
from modelrelease.leader import LeaderElector, LeaseConfig

pytestmark = pytest.mark.cluster

HOUR_AGO = timedelta(hours=1)


def test_a_slow_renewal_does_not_extend_validity_past_its_start(cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        clock = ManualClock(1000.0)

        class SlowWrites(client.ApiClient):  # type: ignore[misc]
            """Every write of the Lease takes 8 s on the elector's clock."""

            async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                if method == "PUT":
                    clock.advance(8.0)
                return await super().request(method, url, *args, **kwargs)

        api = await api_client(cluster, cls=SlowWrites)
        # The Lease is already ours (a restarted replica), so acquiring it is a PUT.
        await write_lease(api, namespace, "slow", holder="me", renew_time=datetime.now(UTC))
        elector = LeaderElector(
            api, LeaseConfig(namespace, "slow", "me", lease_duration=15, renew_period=5), monotonic=clock
        )
        election = asyncio.create_task(elector.run())
        try:
            await eventually(elector.is_leader, 30, "the lease acquired")
            assert clock.now == 1008.0  # the request took 8 s
            clock.now = 1009.9
            assert elector.is_leader()
            clock.now = 1010.1  # 1000 (request sent) + 15 (duration) - 5 (margin)
            assert not elector.is_leader(), "validity counted from when the renewal returned"
            assert elector.validity_left() == 0.0
        finally:
            await stop(election)
            await api.close()

    asyncio.run(scenario())


def test_a_holder_with_a_skewed_clock_is_taken_over_only_once_it_stops_renewing(
    cluster: Cluster, namespace: str
) -> None:
    async def scenario() -> None:
        clock = ManualClock(1000.0)
        holder_api = await api_client(cluster)
        api = await api_client(cluster, cls=CountingApiClient)
        skewed = datetime.now(UTC) - HOUR_AGO  # the holder's wall clock is an hour behind ours
        await write_lease(holder_api, namespace, "skew", holder="other", renew_time=skewed, duration=10)
        challenger = LeaderElector(
            api, LeaseConfig(namespace, "skew", "challenger", lease_duration=10, renew_period=0.1), monotonic=clock
        )
        election = asyncio.create_task(challenger.run())
        try:
            for renewal in range(1, 5):  # 4 x 6 s: far longer than the duration, but never 10 s without a change
                await reads_more(api)
                assert not challenger.is_leader(), f"took over a holder that renewed (round {renewal})"
                clock.advance(6.0)
                await reads_more(api)
                assert not challenger.is_leader(), f"took over a holder that renewed 6 s ago (round {renewal})"
                renewed = skewed + timedelta(seconds=6 * renewal)
                await write_lease(holder_api, namespace, "skew", holder="other", renew_time=renewed, duration=10)
            assert (await read_lease(holder_api, namespace, "skew")).spec.holder_identity == "other"

            await reads_more(api)  # the holder has stopped renewing
            clock.advance(6.0)
            await reads_more(api)
            assert not challenger.is_leader(), "took over after 6 s of a 10 s lease"
            clock.advance(4.5)
            await eventually(challenger.is_leader, 20, "taking over a holder silent for 10.5 s")
            lease = await read_lease(holder_api, namespace, "skew")
            assert lease.spec.holder_identity == "challenger"
            assert lease.spec.lease_transitions == 1
        finally:
            await stop(election)
            await api.close()
            await holder_api.close()

    asyncio.run(scenario())


def test_a_replica_that_sees_another_holder_stops_leading_at_once(cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        api = await api_client(cluster)
        clock = ManualClock(1000.0)
        elector = LeaderElector(
            api, LeaseConfig(namespace, "stolen", "me", lease_duration=15, renew_period=5), monotonic=clock
        )
        try:
            assert await elector.attempt()
            await write_lease(api, namespace, "stolen", holder="thief", renew_time=datetime.now(UTC))
            assert not await elector.attempt(), "still leading on a Lease another replica holds"
            assert elector.validity_left() == 0.0
        finally:
            await api.close()

    asyncio.run(scenario())


def test_an_elector_cut_off_from_the_api_server_keeps_trying_and_leads_again_after(
    cluster: Cluster, namespace: str
) -> None:
    async def scenario() -> None:
        proxy = CuttableProxy(cluster.api_server)
        await proxy.start()
        api = await api_client(cluster, host=proxy.url)
        clock = ManualClock(1000.0)
        elector = LeaderElector(
            api, LeaseConfig(namespace, "cut", "me", lease_duration=6, renew_period=2), monotonic=clock
        )
        election = asyncio.create_task(elector.run())
        try:
            await eventually(elector.is_leader, 30, "the lease acquired through the proxy")
            before = lease_errors()
            await proxy.cut()
            await eventually(lambda: lease_errors() >= before + 3 or election.done(), 30, "three failed renewals")
            assert not election.done(), f"the elector ended: {election.exception() if election.done() else ''}"
            clock.advance(4.1)  # validity is 6 - 2 s from the last renewal sent
            assert not elector.is_leader(), "leading without a renewal for longer than the validity"
            await proxy.restore()
            await eventually(elector.is_leader, 30, "leading again once the API server is reachable")
            assert (await read_lease(api, namespace, "cut")).spec.holder_identity == "me"
        finally:
            await stop(election)
            await api.close()
            await proxy.cut()

    asyncio.run(scenario())


def test_a_leader_whose_validity_ran_out_is_elected_anew_when_it_renews(cluster: Cluster, namespace: str) -> None:
    """Passes stopped when the validity ran out wait for ``on_elected`` (the scheduler's wake_all): it must come."""

    async def scenario() -> list[float]:
        api = await api_client(cluster)
        clock = ManualClock(1000.0)
        elections: list[float] = []
        elector = LeaderElector(
            api,
            LeaseConfig(namespace, "lapse", "me", lease_duration=15, renew_period=5),
            on_elected=lambda: elections.append(clock.now),
            monotonic=clock,
        )
        try:
            assert await elector.attempt()
            assert await elector.attempt()  # a renewal on time is no new election
            clock.advance(11.0)  # paused (a long GC, SIGSTOP) past the 10 s of validity
            assert not elector.is_leader()
            assert await elector.attempt()  # still the holder: nobody took over in 11 s of a 15 s lease
            return elections
        finally:
            await api.close()

    assert asyncio.run(scenario()) == [1000.0, 1011.0]
