"""One asyncio task per release: a timer at the release's own pace that sleeps while nothing can change.

Why not kopf's timers or daemons: a kopf timer has one interval for every
object, and both timers and daemons put a finalizer on each release (a
write per object, and deletion blocked while the operator is down).  kopf
here only watches and wakes; this module decides when a release runs:

- a watch event that matters (spec changed, a manual request, a Deployment
  of the release changed) wakes the release's task at once;
- after a pass, the task sleeps for as long as the pass said (the analysis
  interval while a rollout is judged), or until woken when the release is
  idle (Succeeded, RolledBack): idle releases cost no API calls at all;
- passes of one release never overlap; wakes during a pass coalesce into
  one more pass, and a woken release waits ``DEBOUNCE`` before its pass so a
  burst of events (a Deployment's status moving pod by pod) costs one pass;
- at most ``workers`` passes run at once (the rest wait their turn, counted
  by ``modelrelease_passes_waiting``), so 1,000 releases due together do not
  open 1,000 requests and gRPC calls at once;
- ``wake_all`` (after an election) spreads the wakes over up to
  ``STARTUP_SPREAD`` seconds, in a fixed order, so a replica that takes over
  1,000 releases resumes them as a steady stream, not a storm;
- a pass runs only while this replica leads, and no longer: it is cancelled
  when the Lease's validity runs out before it ends (each renewal extends
  it), so a slow pass cannot act on leadership it no longer has.  A pass
  stopped that way, or by a fenced write (``LeadershipLost``), is not
  retried while this replica may not act; the release is *parked* and runs
  again once it may: when this replica is elected (``wake_all``), or when a
  renewal that came late restores the validity without an election (under
  heavy load; found by the scale smoke, where releases then waited forever).
  While releases are parked the scheduler looks once every ``PARK_POLL``
  seconds whether it may act, and wakes them spread out as ``wake_all`` does.
  A fenced pass asks to run again soon (``reconcile.FENCED_RETRY``), so it is
  parked even when the validity came back before the pass returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from modelrelease.kube.fencing import LeadershipLost
from modelrelease.logs import release_context
from modelrelease.metrics import PASSES_WAITING, count_phases, forget_release
from modelrelease.reconcile import PassOutcome

log = logging.getLogger("modelrelease.scheduler")

Key = tuple[str, str]
PassFn = Callable[[str, str], Awaitable[PassOutcome]]

DEBOUNCE = 0.2
"""Seconds a woken release waits before its pass, so that the wakes of one burst of events coalesce."""
WORKERS = 16
"""Passes that may run at once (each mostly waits on I/O: the API server, gRPC, Prometheus)."""
STARTUP_STEP = 0.02
"""Seconds between two releases' wakes in ``wake_all``..."""
STARTUP_SPREAD = 10.0
"""...but all of them woken within this many seconds."""
PARK_POLL = 1.0
"""Seconds between looks, while releases are parked, at whether this replica may act again."""
FAILURE_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds before retrying after an unexpected error in a pass, growing with each failure in a row."""


@dataclass
class _Slot:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Scheduler:
    """Runs ``run_pass(namespace, name)`` for each known release, only while ``may_act()`` says so.

    ``time_left()`` is how many seconds this replica may still act (the
    Lease's validity left); a pass still running when it reaches 0 is cancelled.
    """

    def __init__(
        self,
        run_pass: PassFn,
        may_act: Callable[[], bool] = lambda: True,
        time_left: Callable[[], float] = lambda: math.inf,
        workers: int = WORKERS,
        debounce: float = DEBOUNCE,
    ) -> None:
        self._run_pass = run_pass
        self._workers = asyncio.Semaphore(workers)
        self._waiting = 0
        self._debounce = debounce
        self._pending_wakes: list[asyncio.TimerHandle] = []
        self._parked: set[Key] = set()
        self._unparker: asyncio.Task[None] | None = None
        self._may_act = may_act
        self._time_left = time_left
        self._slots: dict[Key, _Slot] = {}
        self._phases: dict[str, str] = {}

    def releases(self) -> list[Key]:
        return sorted(self._slots)

    def knows(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._slots

    def wake(self, namespace: str, name: str) -> None:
        """Make sure the release has a task and that it runs a pass soon."""
        key = (namespace, name)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            slot.task = asyncio.create_task(self._loop(key, slot), name=f"release {namespace}/{name}")
        slot.wake.set()

    def wake_all(self) -> None:
        """After gaining leadership: everything may have moved while another replica (or none) acted.

        The wakes are spread out (``STARTUP_STEP`` apart, within ``STARTUP_SPREAD``) rather than all at once.
        """
        for handle in self._pending_wakes:
            handle.cancel()
        self._pending_wakes.clear()
        self._parked.clear()
        self._wake_spread(sorted(self._slots))

    def _wake_spread(self, keys: list[Key]) -> None:
        step = min(STARTUP_STEP, STARTUP_SPREAD / max(1, len(keys)))
        loop = asyncio.get_running_loop()
        for index, key in enumerate(keys):
            if index == 0:
                self._wake_known(key)
            else:
                self._pending_wakes.append(loop.call_later(index * step, self._wake_known, key))

    def _park(self, key: Key) -> None:
        """The release waits until this replica may act again (see the module docstring)."""
        self._parked.add(key)
        if self._unparker is None or self._unparker.done():
            self._unparker = asyncio.create_task(self._unpark_when_acting(), name="scheduler unpark")

    async def _unpark_when_acting(self) -> None:
        while self._parked:
            await asyncio.sleep(PARK_POLL)
            if self._parked and self._may_act() and self._time_left() > 0:
                keys = sorted(self._parked)
                self._parked.clear()
                self._wake_spread(keys)

    def _wake_known(self, key: Key) -> None:
        slot = self._slots.get(key)
        if slot is not None:  # forgotten meanwhile: nothing to wake
            slot.wake.set()

    async def forget(self, namespace: str, name: str) -> None:
        """The release is gone: stop its task (its objects go with it through owner references)."""
        slot = self._slots.pop((namespace, name), None)
        self._parked.discard((namespace, name))
        self._phases.pop(f"{namespace}/{name}", None)
        count_phases(self._phases)
        forget_release(namespace, name)
        if slot is not None and slot.task is not None:
            slot.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slot.task

    async def close(self) -> None:
        for handle in self._pending_wakes:
            handle.cancel()
        if self._unparker is not None:
            self._unparker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._unparker
        for namespace, name in list(self._slots):
            await self.forget(namespace, name)

    async def _loop(self, key: Key, slot: _Slot) -> None:
        namespace, name = key
        failures = 0
        while True:
            await slot.wake.wait()
            if self._debounce > 0:
                await asyncio.sleep(self._debounce)  # wakes meanwhile join this pass
            slot.wake.clear()
            if not self._may_act():
                self._park(key)
                continue
            delay: float | None
            with release_context(f"{namespace}/{name}"):
                try:
                    outcome = await self._pass_in_turn(namespace, name)
                    if outcome is None:  # leadership went while it waited for a worker
                        self._park(key)
                        continue
                    failures = 0
                    delay = outcome.next_in
                    if not self._may_act():  # a write was fenced (reconcile stops there): run again once acting
                        self._park(key)
                    if outcome.phase is not None:
                        self._phases[f"{namespace}/{name}"] = outcome.phase
                        count_phases(self._phases)
                except asyncio.CancelledError:
                    raise
                except LeadershipLost as lost:
                    delay = None
                    self._park(key)
                    log.warning("pass stopped: %s; the release runs again once this replica leads", lost)
                except Exception:
                    delay = FAILURE_BACKOFF[min(failures, len(FAILURE_BACKOFF) - 1)]
                    failures += 1
                    log.exception("reconcile pass failed; retrying in %.0fs", delay)
            if delay is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(slot.wake.wait(), timeout=delay)
                slot.wake.set()

    async def _pass_in_turn(self, namespace: str, name: str) -> PassOutcome | None:
        """The pass, once one of the ``workers`` is free; None when this replica may no longer act by then."""
        self._waiting += 1
        PASSES_WAITING.set(self._waiting)
        try:
            await self._workers.acquire()
        finally:
            self._waiting -= 1
            PASSES_WAITING.set(self._waiting)
        try:
            if not self._may_act():
                return None
            return await self._pass_while_leading(namespace, name)
        finally:
            self._workers.release()

    async def _pass_while_leading(self, namespace: str, name: str) -> PassOutcome:
        """One pass, cancelled (LeadershipLost) if this replica's time to act runs out before it ends."""

        async def run() -> PassOutcome:
            return await self._run_pass(namespace, name)

        one_pass = asyncio.create_task(run(), name=f"pass {namespace}/{name}")
        try:
            while not one_pass.done():
                left = self._time_left()
                if left <= 0:
                    break
                await asyncio.wait({one_pass}, timeout=None if math.isinf(left) else left)
        finally:
            if not one_pass.done():
                one_pass.cancel()
                await asyncio.wait({one_pass})  # unlike awaiting the task, never swallows our own cancellation
        if one_pass.cancelled():
            raise LeadershipLost("the Lease's validity ran out during the pass, which was cancelled")
        return one_pass.result()
