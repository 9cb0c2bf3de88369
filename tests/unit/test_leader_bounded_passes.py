"""A pass cannot outlive leadership: the scheduler cancels it when the Lease's validity runs out, and does not retry.

``time_left`` here is a real deadline on the event loop's clock, moved the
way renewals move the elector's validity.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from leader_support import eventually

from modelrelease.reconcile import PassOutcome
from modelrelease.scheduler import Scheduler


class Validity:
    """Seconds left until a deadline on the loop's clock; ``renew`` pushes the deadline out."""

    def __init__(self, seconds: float) -> None:
        self.until = asyncio.get_running_loop().time() + seconds

    def left(self) -> float:
        return max(0.0, self.until - asyncio.get_running_loop().time())

    def renew(self, seconds: float) -> None:
        self.until = asyncio.get_running_loop().time() + seconds


def test_a_pass_still_running_when_validity_runs_out_is_cancelled_and_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        validity = Validity(0.3)
        calls = 0
        cancelled = asyncio.Event()

        async def stuck_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal calls
            calls += 1
            if calls > 1:
                return PassOutcome(phase="Succeeded", next_in=None)
            try:
                await asyncio.Event().wait()  # a request that never answers
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("unreachable")

        scheduler = Scheduler(stuck_pass, may_act=lambda: validity.left() > 0, time_left=validity.left)
        scheduler.wake("ml", "digits")
        await asyncio.wait_for(cancelled.wait(), timeout=10)
        for _ in range(50):  # give a (wrong) retry every chance to start
            await asyncio.sleep(0)
        assert calls == 1
        validity.renew(30)  # elected again: the runner's on_elected wakes every release
        scheduler.wake_all()
        await eventually(lambda: calls == 2, 10, "a pass after re-election")
        await scheduler.close()

    with caplog.at_level(logging.WARNING, logger="modelrelease.scheduler"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a lost lease is no error"
    assert any("runs again once this replica leads" in r.getMessage() for r in caplog.records)


def test_renewals_during_a_long_pass_let_it_finish() -> None:
    async def scenario() -> list[str]:
        validity = Validity(0.2)
        finished: list[str] = []

        async def renew_while(running: asyncio.Event) -> None:
            while not running.is_set():
                validity.renew(0.2)
                await asyncio.sleep(0.05)

        async def long_pass(namespace: str, name: str) -> PassOutcome:
            await asyncio.sleep(0.8)  # four times the validity any one renewal gives
            finished.append(name)
            return PassOutcome(phase="Succeeded", next_in=None)

        done = asyncio.Event()
        renewer = asyncio.create_task(renew_while(done))
        scheduler = Scheduler(long_pass, may_act=lambda: validity.left() > 0, time_left=validity.left)
        scheduler.wake("ml", "digits")
        await eventually(lambda: finished, 10, "the long pass to finish")
        done.set()
        await renewer
        await scheduler.close()
        return finished

    assert asyncio.run(scenario()) == ["digits"]
