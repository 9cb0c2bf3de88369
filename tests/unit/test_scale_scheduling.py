"""What keeps 1,000 releases cheap: a bounded pool of passes, coalesced wakes, spread-out resumes, reused clients."""

from __future__ import annotations

import asyncio

from modelrelease.measure import PROVIDERS_KEPT, Analyzer
from modelrelease.reconcile import PassOutcome
from modelrelease.scheduler import Scheduler
from modelrelease.serving.client import ChannelPool, forget_pod


async def _until(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_no_more_passes_run_at_once_than_there_are_workers() -> None:
    async def scenario() -> tuple[int, int]:
        running = peak = done = 0
        gate = asyncio.Event()

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal running, peak, done
            running += 1
            peak = max(peak, running)
            await gate.wait()
            running -= 1
            done += 1
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass, workers=3, debounce=0)
        for index in range(20):
            scheduler.wake("ml", f"r{index}")
        await _until(lambda: running == 3)
        gate.set()
        await _until(lambda: done == 20)
        await scheduler.close()
        return peak, done

    assert asyncio.run(scenario()) == (3, 20)


def test_a_burst_of_wakes_before_the_pass_starts_costs_one_pass() -> None:
    async def scenario() -> int:
        calls = 0

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal calls
            calls += 1
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass, debounce=0.3)
        for _ in range(10):
            scheduler.wake("ml", "digits")
            await asyncio.sleep(0.01)
        await _until(lambda: calls >= 1)
        await asyncio.sleep(0.5)  # a (wrong) second pass would have started by now
        await scheduler.close()
        return calls

    assert asyncio.run(scenario()) == 1


def test_wake_all_spreads_the_releases_out_instead_of_waking_them_at_once() -> None:
    async def scenario() -> tuple[float, int]:
        leading = False
        starts: list[float] = []
        loop = asyncio.get_running_loop()

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            starts.append(loop.time())
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass, may_act=lambda: leading, debounce=0)
        for index in range(50):
            scheduler.wake("ml", f"r{index}")
        await asyncio.sleep(0.05)
        assert not starts  # not leading: nothing ran
        leading = True
        scheduler.wake_all()
        await _until(lambda: len(starts) == 50)
        await scheduler.close()
        return max(starts) - min(starts), len(starts)

    spread, count = asyncio.run(scenario())
    assert count == 50
    assert spread >= 49 * 0.02 * 0.9


def test_a_forgotten_release_is_not_brought_back_by_a_pending_wake() -> None:
    async def scenario() -> list[str]:
        async def one_pass(namespace: str, name: str) -> PassOutcome:
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass, debounce=0)
        for index in range(5):
            scheduler.wake("ml", f"r{index}")
        scheduler.wake_all()
        await scheduler.forget("ml", "r4")
        await asyncio.sleep(0.2)
        known = [name for _, name in scheduler.releases()]
        await scheduler.close()
        return known

    assert asyncio.run(scenario()) == ["r0", "r1", "r2", "r3"]


def test_a_channel_is_reused_until_it_idles_out_or_its_pod_goes() -> None:
    async def scenario() -> None:
        now = [0.0]
        pool = ChannelPool(idle_seconds=60, clock=lambda: now[0])
        first = pool.channel("127.255.128.5:8500")
        assert pool.channel("127.255.128.5:8500") is first
        pool.channel("127.255.128.6:8500")
        now[0] = 61.0
        pool.channel("127.255.128.6:8500")  # using one address sweeps the others that idled out
        assert "127.255.128.5:8500" not in pool and len(pool) == 1
        pool.evict_host("127.255.128.6")
        assert len(pool) == 0
        await pool.close()

    asyncio.run(scenario())


def test_a_deleted_pod_closes_its_channel_in_the_running_loops_pool() -> None:
    async def scenario() -> bool:
        from modelrelease.serving.client import channels

        channels().channel("127.255.128.7:8500")
        forget_pod("MODIFIED", "Pod", {"status": {"podIP": "127.255.128.7"}})
        kept = "127.255.128.7:8500" in channels()
        forget_pod("DELETED", "Pod", {"status": {"podIP": "127.255.128.7"}})
        gone = "127.255.128.7:8500" not in channels()
        await channels().close()
        return kept and gone

    assert asyncio.run(scenario())


def test_the_analyzer_keeps_a_bounded_number_of_prometheus_clients() -> None:
    analyzer = Analyzer("http://127.0.0.1:9090")
    for index in range(PROVIDERS_KEPT + 5):
        analyzer._provider(f"http://127.0.0.{index + 1}:9090")
    analyzer._provider("http://127.0.0.6:9090")  # used again: now the most recent
    kept = analyzer.cached_addresses()
    assert len(kept) == PROVIDERS_KEPT
    assert kept[-1] == "http://127.0.0.6:9090"
    assert "http://127.0.0.1:9090" not in kept


def test_a_change_the_cache_stored_wakes_its_release_but_a_listing_does_not() -> None:
    from modelrelease.kube.cache import LISTED
    from modelrelease.runner import _wake_on_change

    async def scenario() -> list[str]:
        passes: list[str] = []

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            passes.append(name)
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass, debounce=0)
        scheduler.wake("ml", "digits")
        await _until(lambda: passes == ["digits"])

        def service(release: str) -> dict[str, object]:
            return {"metadata": {"namespace": "ml", "name": release, "labels": {"modelrelease.io/release": release}}}

        _wake_on_change(scheduler, LISTED, "Service", service("digits"))
        _wake_on_change(scheduler, "MODIFIED", "Pod", service("digits"))
        _wake_on_change(scheduler, "DELETED", "Service", service("unknown"))
        await asyncio.sleep(0.1)
        assert passes == ["digits"]  # none of those wakes anything
        _wake_on_change(scheduler, "DELETED", "Service", service("digits"))
        await _until(lambda: len(passes) == 2)
        await scheduler.close()
        return passes

    assert asyncio.run(scenario()) == ["digits", "digits"]


def test_a_release_stopped_by_a_lapsed_validity_runs_again_when_a_late_renewal_restores_it() -> None:
    """No election happens (no wake_all): the release must not wait forever."""

    async def scenario() -> int:
        leading = True
        calls = 0

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal calls, leading
            calls += 1
            if calls == 1:
                leading = False  # the validity lapses during the first pass; its write is fenced
            return PassOutcome(phase=None, next_in=None)

        scheduler = Scheduler(one_pass, may_act=lambda: leading, debounce=0)
        scheduler.wake("ml", "digits")
        await _until(lambda: calls == 1)
        await asyncio.sleep(1.5)
        assert calls == 1  # not while it may not act
        leading = True  # a late renewal: the elector never lost the Lease, so nobody calls wake_all
        await _until(lambda: calls == 2)
        await scheduler.close()
        return calls

    assert asyncio.run(scenario()) == 2
