"""Latency quantiles judged as counts: "p99 <= L" is "at most 1% of requests slower than L".

Why: ``histogram_quantile()`` interpolates inside a bucket and carries no
sample size, so a check that fails on it fails on noise (three slow requests
out of a hundred move p99 across any bound).  The same statement as a
proportion, slow requests over all requests, is a count like errors, so it
is pooled over the stage and judged by the sequential tests with their
guarantee (``sequential.against_bound`` against ``1 - quantile``).

Prometheus histograms count requests at or below each bucket boundary
(``_bucket{le="b"}``), so the slow requests are ``_count - _bucket{le="b"}``,
exact only when ``L`` is a boundary.  When it is not, two boundaries keep
each verdict true to the bound as written:

- **fail** counts requests slower than the smallest boundary at or above
  ``L``: more than 1% slower than that boundary means p99 is above ``L``.
- **pass** counts requests slower than the largest boundary at or below
  ``L``: at most 1% slower than that boundary means p99 is at most ``L``.

With ``L`` on a boundary both are the same count.  A comparison with the
stable version (``compareToBaseline.maxIncrease``) is the same question
with ``L`` the stable version's pooled p99 plus the increase allowed
(``check._slow_share_versus_stable``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from modelrelease.analysis.pooled import Increase
from modelrelease.analysis.sequential import Counts, SequentialResult, against_bound


@dataclass(frozen=True)
class SlowShareBound:
    """How to judge "quantile ``quantile`` at most ``limit``" from a histogram with the given boundaries.

    ``max_share`` is the largest allowed share of slow requests.  ``fail_le``
    and ``pass_le`` are the ``le`` label values (as Prometheus spells them)
    whose slow counts can fail and pass the bound; None when the histogram
    has no such finite boundary, so that verdict cannot be reached.
    """

    quantile: float
    limit: float
    max_share: float
    fail_le: str | None
    pass_le: str | None


def slow_share_bound(quantile: float, limit: float, le_labels: Iterable[str]) -> SlowShareBound:
    """Choose the bucket boundaries for "quantile <= limit" (``limit`` in the histogram's unit)."""
    if not (math.isfinite(quantile) and 0.0 < quantile < 1.0):
        raise ValueError(f"quantile is {quantile}: must be between 0 and 1, e.g. 0.99 for p99")
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"max is {limit}: a latency bound must be a positive number")
    boundaries: list[tuple[float, str]] = []
    for label in le_labels:
        try:
            boundary = float(label)
        except ValueError:
            raise ValueError(f"le label {label!r} is not a number") from None
        if math.isfinite(boundary):
            boundaries.append((boundary, label))
    if not boundaries:
        raise ValueError("the histogram has no finite bucket boundary (le) to count slow requests at")
    at_or_above = [b for b in boundaries if b[0] >= limit]
    at_or_below = [b for b in boundaries if b[0] <= limit]
    return SlowShareBound(
        quantile=quantile,
        limit=limit,
        max_share=1.0 - quantile,
        fail_le=min(at_or_above)[1] if at_or_above else None,
        pass_le=max(at_or_below)[1] if at_or_below else None,
    )


def slow_increase(count: float, at_or_below: float) -> Increase:
    """One interval's slow requests (``_count - _bucket{le}``) over its requests, from the two increases.

    The two series are scraped together but extrapolated separately by
    ``increase()``, so a bucket may come out a fraction above the count:
    slow is then 0, not negative.  A negative ``count`` is passed on for
    ``PooledCounts`` to drop as a reset.
    """
    return Increase(numerator=max(count - at_or_below, 0.0), denominator=count)


def judge_slow_share(
    metric: str, bound: SlowShareBound, slower_than_fail_le: Counts, slower_than_pass_le: Counts, alpha: float
) -> SequentialResult:
    """Fail on the fail boundary's counts, pass on the pass boundary's; inconclusive otherwise.

    Both tests spend the same ``alpha``: each side's error is bounded by it
    separately, as with a single boundary.  Pass the same counts twice when
    the boundaries are the same; the counts of a boundary that is None are
    not read.
    """
    failing = passing = None
    if bound.fail_le is not None:
        failing = against_bound(metric, slower_than_fail_le, "max", bound.max_share, alpha)
        if failing.verdict == "fail" or bound.fail_le == bound.pass_le:
            return failing
    if bound.pass_le is not None:
        passing = against_bound(metric, slower_than_pass_le, "max", bound.max_share, alpha)
        if passing.verdict == "pass":
            return passing
    if failing is not None:
        if failing.verdict == "inconclusive":
            return failing
        why = f"slow counted above le={bound.fail_le}, not {bound.limit:g}: that does not show p{_pct(bound)} <= {bound.limit:g}"
        return replace(failing, verdict="inconclusive", note=why)
    assert passing is not None
    if passing.verdict == "inconclusive":
        return passing
    why = f"slow counted above le={bound.pass_le}, not {bound.limit:g}: that does not show p{_pct(bound)} > {bound.limit:g}"
    return replace(passing, verdict="inconclusive", note=why)


def _pct(bound: SlowShareBound) -> str:
    return f"{bound.quantile * 100:g}"
