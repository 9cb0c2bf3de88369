"""Counts pooled over a stage from per-interval increases, safe across restarts, resets and gaps.

Why: the sequential tests (``sequential``) judge everything a stage has
seen, not the last interval.  Querying ``increase(...[<stage age>])`` would
do that in one query, but it forgets the stage when Prometheus loses data,
depends on retention, and cannot tell a counter reset it missed from a quiet
service.  Summing each check's ``increase()`` into the release's status
instead keeps the pooled counts where all other state lives, so a restarted
operator resumes them, and lets each rule below be a pure function:

- **replayed checks**: every addition carries the end of the window it
  covers; an increase whose window ends at or before ``counted_until`` was
  already counted (an operator that restarted before writing its status
  repeats the check) and is ignored, never counted twice.
- **gaps**: a check without data (``None``, NaN, no series) adds nothing
  and leaves ``counted_until`` where it was, so the next check can query the
  window since ``counted_until`` and count the requests the gap hid.
- **counter resets**: ``increase()`` sees through resets, but a negative
  increase (raw counter differences, a series that restarted between two
  queries) cannot be trusted: the interval is dropped (``dropped``), never
  subtracted.
- **numerator above denominator**: two ``increase()`` queries extrapolate
  separately, so errors may exceed requests by a fraction; the numerator is
  capped at the denominator.
- **two versions move together**: ``PooledPair`` adds an interval to the
  candidate and the stable version together or to neither, so a gap in one
  version's data cannot make the two pools cover different times (which,
  under a drift common to both, would look like a difference between them).
  Pools are per stage: a new stage (a new traffic split) starts new pools.
- **several proportions of one metric** (slow requests above two bucket
  boundaries, each predicted class): ``add_window`` adds all of them or
  none, so they always cover the same windows.  It keeps the pool in the
  status model (``MetricPool``) the operator writes to the release.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from modelrelease.analysis.sequential import Counts
from modelrelease.api.status import MetricPool, PooledPart, VersionCounts


@dataclass(frozen=True)
class Increase:
    """One interval's increase of a proportion's two counters for one version."""

    numerator: float
    denominator: float


_Refused = Literal["gap", "reset"]


@dataclass(frozen=True)
class PooledCounts:
    """One version's counts since the stage began, and how they were gathered."""

    numerator: float = 0.0
    denominator: float = 0.0
    intervals: int = 0
    gaps: int = 0
    dropped: int = 0
    counted_until: datetime | None = None

    @property
    def counts(self) -> Counts:
        return Counts(self.numerator, self.denominator)

    def already_counted(self, until: datetime) -> bool:
        return self.counted_until is not None and until <= self.counted_until

    def add(self, increase: Increase | None, until: datetime) -> PooledCounts:
        """These counts with one interval's ``increase`` (ending at ``until``) added, by the rules above."""
        if self.already_counted(until):
            return self
        usable = _usable(increase)
        return self._with(usable, until)

    def _with(self, usable: Increase | _Refused, until: datetime) -> PooledCounts:
        if usable == "gap":
            return replace(self, gaps=self.gaps + 1)
        if usable == "reset":
            return replace(self, dropped=self.dropped + 1, counted_until=until)
        assert isinstance(usable, Increase)
        return replace(
            self,
            numerator=self.numerator + usable.numerator,
            denominator=self.denominator + usable.denominator,
            intervals=self.intervals + 1,
            counted_until=until,
        )


@dataclass(frozen=True)
class PooledPair:
    """The candidate's and the stable version's pools for one metric in one stage.

    ``stable`` is None when the stage has no stable version to compare with;
    then the candidate's pool alone is kept.
    """

    candidate: PooledCounts = PooledCounts()
    stable: PooledCounts | None = None

    @classmethod
    def start(cls, with_stable: bool) -> PooledPair:
        return cls(PooledCounts(), PooledCounts() if with_stable else None)

    def add(self, candidate: Increase | None, stable: Increase | None, until: datetime) -> PooledPair:
        """Both pools with this interval added, or both without it (the worse refusal of the two wins)."""
        if self.stable is None:
            return replace(self, candidate=self.candidate.add(candidate, until))
        if self.candidate.already_counted(until):
            return self
        c, s = _usable(candidate), _usable(stable)
        both: Increase | _Refused | None = None
        if c == "gap" or s == "gap":
            both = "gap"
        elif c == "reset" or s == "reset":
            both = "reset"
        if both is not None:
            return PooledPair(self.candidate._with(both, until), self.stable._with(both, until))
        return PooledPair(self.candidate._with(c, until), self.stable._with(s, until))


def _usable(increase: Increase | None, cap: bool = True) -> Increase | _Refused:
    if increase is None or not (math.isfinite(increase.numerator) and math.isfinite(increase.denominator)):
        return "gap"
    if increase.numerator < 0 or increase.denominator < 0:
        return "reset"
    numerator = min(increase.numerator, increase.denominator) if cap else increase.numerator
    return Increase(numerator, increase.denominator)


WindowParts = Mapping[str, tuple[Increase | None, Increase | None]]
"""One window's increases per part of a metric: (candidate, stable); stable None when not compared."""


def add_window(
    pool: MetricPool | None, parts: WindowParts | None, until: str | None, *, with_stable: bool, cap: bool = True
) -> MetricPool:
    """``pool`` with one window (ending at ``until``, an RFC 3339 stamp) added to every part, or to none.

    ``until`` None (a one-off judgement outside a stage) skips the replay rule.

    ``parts`` None, or any part without data for a version that is pooled,
    is a gap; any negative increase drops the window.  ``cap`` caps each
    numerator at its denominator (events among trials); a mean (a sum of
    errors over a count) is not capped.  Parts not seen before start at 0.
    """
    pool = pool if pool is not None else MetricPool()
    if until is not None and pool.counted_until is not None and _stamp(until) <= _stamp(pool.counted_until):
        return pool
    usable: dict[str, tuple[Increase | _Refused, Increase | _Refused | None]] = {}
    for name, (candidate, stable) in (parts or {}).items():
        usable[name] = (_usable(candidate, cap), _usable(stable, cap) if with_stable else None)
    refusals = {side for pair in usable.values() for side in pair if isinstance(side, str)}
    if parts is None or not parts or "gap" in refusals:
        return pool.model_copy(update={"gaps": pool.gaps + 1})
    if "reset" in refusals:
        return pool.model_copy(update={"dropped": pool.dropped + 1, "counted_until": until})
    merged = {part.part: part for part in pool.parts}
    for name, (c_usable, s_usable) in usable.items():
        assert isinstance(c_usable, Increase)
        before = merged.get(name, PooledPart(part=name, stable=VersionCounts() if with_stable else None))
        after_stable = before.stable
        if isinstance(s_usable, Increase):
            after_stable = _plus(before.stable or VersionCounts(), s_usable)
        merged[name] = PooledPart(part=name, candidate=_plus(before.candidate, c_usable), stable=after_stable)
    return pool.model_copy(
        update={
            "parts": [merged[name] for name in sorted(merged)],
            "intervals": pool.intervals + 1,
            "counted_until": until,
        }
    )


def _plus(counts: VersionCounts, increase: Increase) -> VersionCounts:
    return VersionCounts(
        numerator=counts.numerator + increase.numerator, denominator=counts.denominator + increase.denominator
    )


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
