"""The kubelet's crash-loop back-off, as a pure object driven by an explicit clock.

The kubelet keys a back-off per (pod, container): the first crash restarts at
once, later crashes wait 10 s, 20 s, 40 s ... capped at 5 minutes, and the
entry is forgotten once the container has stayed up for twice the cap.  Tests
and the operator's own tests of crash-looping candidates depend on that shape,
so the numbers are the kubelet's (flowcontrol.Backoff as used by kuberuntime).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


@dataclass
class CrashBackoff:
    initial: float = INITIAL_SECONDS
    maximum: float = MAX_SECONDS
    _delay: float | None = None
    _last_update: float = 0.0

    def _expired(self, event_time: float) -> bool:
        return event_time - self._last_update > 2 * self.maximum

    def delay_after_crash(self, finished_at: float, now: float) -> float:
        """Seconds to wait, from ``now``, before restarting a container that exited at ``finished_at``.

        Like the kubelet this both answers and records the restart: the next
        crash waits twice as long unless the container ran long enough for the
        entry to expire.
        """
        previous = None if self._expired(finished_at) else self._delay
        wait = 0.0 if previous is None else max(0.0, finished_at + previous - now)
        self._delay = self.initial if previous is None else min(previous * 2, self.maximum)
        self._last_update = now + wait
        return wait

    @property
    def current(self) -> float | None:
        """The back-off that the next crash will wait (None before the first crash)."""
        return self._delay
