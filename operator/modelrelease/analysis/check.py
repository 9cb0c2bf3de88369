"""Judge one analysis check: each metric's latest window added to its pool for the stage, then judged.

Why one module: the operator (``evaluate``, after measuring) and anything
else that wants the operator's verdict on given counts (``modelrelease
simulate``, the benchmark) call the same pure function, ``judge_check``, so
there is one place that says what a verdict is.  No I/O, no clock: the end
of the window (``until``) is passed in.

How each metric is judged (``kind_of``):

- **proportion** (error rate, accuracy, precision, recall, feedback rate, a
  user's ``ratio``): the window's counts are added to the stage's pool
  (``pooled.add_window``: restart-safe, gaps and resets handled) and every
  bound is judged on the pooled counts by the always-valid sequential tests
  of ``sequential`` (``min``/``max`` against the bound,
  ``compareToBaseline`` against the stable version's pooled counts).
- **slow share** (the ``tfserving-latency-p99`` template with ``max`` or
  ``compareToBaseline.maxIncrease``): "p99 <= max" judged as "at most 1% of
  requests slower than max", counted from the histogram's buckets
  (``slow_share``), pooled and sequential.  ``maxIncrease`` (seconds) is
  "p99 at most the stable version's p99 plus maxIncrease": both versions'
  whole histograms are pooled, the stable version's p99 is read from its
  pooled buckets (rounded *up* to a boundary), and the candidate is judged
  by the same sequential test against "at most 1% slower than that plus
  maxIncrease" (``_slow_share_versus_stable``).  The p99 shown is
  interpolated from the window's buckets (display only).  ``min`` and
  ``maxDrop`` on latency stay plain thresholds on it.
- **mean** (``mae``, ``mse``): sums and counts pooled, the pooled mean
  judged against the bounds as a threshold.
- **threshold** (a plain ``query``, ``f1``): the window's value against the
  bounds (``judge.judge``), as one check.

A sequential fail is evidence at its level: it rolls back at once.  A
threshold fail is one failed check: ``failureLimit`` of them roll back.
``alpha`` is ``1 - spec.analysis.confidence`` split equally over every bound
judged sequentially in the stage (``alpha_for``).

A window without data (Prometheus unreachable, no series) is a gap: the
metric is inconclusive *without data* (``undecided`` False), which is what
``inconclusiveLimit`` counts.  Data that does not yet decide a bound is
inconclusive and ``undecided``: the stage waits, without pausing.  The
comparison with the stable version is left out, with a note, when the
stable version served under 1% of the candidate's requests in the stage
(the full stage, where it serves nobody).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from modelrelease.analysis.distribution import Auc, auc_bound, auc_from_buckets, total_variation
from modelrelease.analysis.judge import judge
from modelrelease.analysis.pooled import Increase, WindowParts, add_window
from modelrelease.analysis.provider import Measurement, Observation, Unmeasured
from modelrelease.analysis.sequential import (
    MIN_EVENTS,
    Counts,
    SequentialResult,
    against_bound,
    against_stable,
    split_alpha,
)
from modelrelease.analysis.slow_share import SlowShareBound, judge_slow_share, slow_increase, slow_share_bound
from modelrelease.analysis.templates import QueryPlan, plan_for
from modelrelease.api.spec import CompareToBaseline, MetricSpec
from modelrelease.api.status import BoundResult, MetricPool, MetricResult, PooledPart, Verdict

Kind = Literal["proportion", "slow_share", "drift", "auc", "mean", "threshold"]

STABLE_SHARE_TO_COMPARE = 0.01
"""The stable version must have served at least this share of the candidate's requests to be compared with."""


@dataclass(frozen=True)
class Window:
    """One metric's measurements over one window: the candidate's, and the stable version's when compared.

    ``fresh`` False: no window was measured (too short to hold two scrapes,
    ``evaluate.MIN_WINDOW``); the pool is judged as it stands, which is
    neither new data nor a gap.
    """

    candidate: Observation
    stable: Observation | None = None
    fresh: bool = True

    @classmethod
    def nothing_new(cls) -> Window:
        return cls(Unmeasured("no new window yet"), None, fresh=False)


def kind_of(metric: MetricSpec) -> Kind:
    """How ``metric`` is judged (see the module docstring)."""
    try:
        plan = plan_for(metric)
    except ValueError:
        return "threshold"
    if metric.template == "prediction-drift":
        return "drift"
    if metric.template == "auc":
        return "auc"
    if plan.grouped is not None and plan.quantile is not None:
        return "slow_share" if metric.max is not None or _max_increase(metric) is not None else "threshold"
    if plan.proportion:
        return "proportion"
    if plan.is_ratio and plan.samples is None:
        return "mean"
    return "threshold"


def _max_increase(metric: MetricSpec) -> float | None:
    """``compareToBaseline.maxIncrease``, which on latency makes the comparison with stable a sequential one."""
    compare = metric.compare_to_baseline
    return compare.max_increase if compare is not None else None


def sequential_bounds(metric: MetricSpec) -> int:
    """Bounds of ``metric`` judged by the sequential test; each gets an equal share of alpha."""
    kind = kind_of(metric)
    if kind == "slow_share":
        return int(metric.max is not None) + int(_max_increase(metric) is not None)
    if kind == "drift":
        return int(metric.max is not None)
    if kind == "auc":
        compare = metric.compare_to_baseline
        return int(metric.min is not None) + int(compare is not None and compare.max_drop is not None)
    if kind != "proportion":
        return 0
    compare = metric.compare_to_baseline
    bounds = [metric.min, metric.max]
    if compare is not None:
        bounds += [compare.max_drop, compare.max_increase]
    return sum(bound is not None for bound in bounds)


def alpha_for(metrics: Sequence[MetricSpec], confidence: float) -> float:
    """Each sequential bound's level: ``1 - confidence`` split over all of them (Bonferroni)."""
    return split_alpha(confidence, max(1, sum(sequential_bounds(m) for m in metrics)))


def judge_check(
    metrics: Sequence[MetricSpec],
    confidence: float,
    windows: Mapping[str, Window],
    previous: Sequence[MetricResult],
    until: str | None,
) -> list[MetricResult]:
    """The verdict on every metric for one check, in spec order: the public entry point for "judge this check".

    ``windows`` holds each metric's measurements over the window since its
    pool was last counted (a metric absent from it had no window: a gap);
    ``previous`` is the stage's results so far (``status.analysis.metrics``,
    whose pools carry on); ``until`` is the window's end (RFC 3339; None
    for a one-off judgement, which skips the rule against counting a
    window twice).
    """
    alpha = alpha_for(metrics, confidence)
    before = {result.name: result for result in previous}
    results = []
    for metric in metrics:
        window = windows.get(metric.name, Window(Unmeasured("not measured in this check")))
        earlier = before.get(metric.name)
        results.append(judge_metric(metric, window, earlier.pool if earlier else None, until, alpha))
    return results


def judge_metric(
    metric: MetricSpec, window: Window, pool: MetricPool | None, until: str | None, alpha: float
) -> MetricResult:
    """One metric's verdict after adding ``window`` to ``pool`` (the stage's counts so far)."""
    kind = kind_of(metric)
    if kind == "proportion":
        return _proportion(metric, window, pool, until, alpha)
    if kind == "slow_share":
        return _slow_share(metric, window, pool, until, alpha)
    if kind == "mean":
        return _mean(metric, window, pool, until)
    if kind in ("drift", "auc"):
        return _distribution(metric, window, pool, until, alpha)
    return _threshold(metric, window)


def needs_stable(metric: MetricSpec) -> bool:
    """Whether a check measures the stable version for ``metric``: compared with it, or a drift from it."""
    return metric.compare_to_baseline is not None or kind_of(metric) == "drift"


# --- proportions ---------------------------------------------------------------------------------------------


def _increase(observation: Observation | None) -> Increase | None:
    if not isinstance(observation, Measurement) or observation.numerator is None or observation.denominator is None:
        return None
    return Increase(observation.numerator, observation.denominator)


def _gap_reason(window: Window) -> str | None:
    for who, observation in (("candidate", window.candidate), ("stable version", window.stable)):
        if isinstance(observation, Unmeasured):
            return f"{who}: {observation.reason}"
    return None


def _counts(part: PooledPart | None) -> tuple[Counts, Counts | None]:
    if part is None:
        return Counts(0.0, 0.0), None
    stable = Counts(part.stable.numerator, part.stable.denominator) if part.stable is not None else None
    return Counts(part.candidate.numerator, part.candidate.denominator), stable


def _part(pool: MetricPool, name: str) -> PooledPart | None:
    return next((part for part in pool.parts if part.part == name), None)


def _proportion(
    metric: MetricSpec, window: Window, pool: MetricPool | None, until: str | None, alpha: float
) -> MetricResult:
    compared = _compared(metric, window, pool)
    parts: WindowParts = {"": (_increase(window.candidate), _increase(window.stable) if compared else None)}
    pooled = add_window(pool, parts, until, with_stable=compared) if window.fresh else pool or MetricPool()
    candidate, stable = _counts(_part(pooled, ""))
    gap = _gap_reason(Window(window.candidate, window.stable if compared else None)) if window.fresh else None
    results: list[SequentialResult] = []
    notes: list[str] = []
    shortage = _min_requests_shortage(metric, candidate)
    if shortage is None:
        if metric.min is not None:
            results.append(against_bound(metric.name, candidate, "min", metric.min, alpha))
        if metric.max is not None:
            results.append(against_bound(metric.name, candidate, "max", metric.max, alpha))
        results += _versus_stable(metric, candidate, stable if compared else None, alpha, notes)
    return _sequential_result(metric, results, pooled, candidate, stable, gap, shortage, notes)


def _compared(metric: MetricSpec, window: Window, pool: MetricPool | None) -> bool:
    """Whether the stable version is pooled too: compared, and measured (or pooled before, for a window not taken)."""
    if not needs_stable(metric):
        return False
    if window.fresh:
        return window.stable is not None
    return pool is not None and any(part.stable is not None for part in pool.parts)


def _min_requests_shortage(metric: MetricSpec, candidate: Counts) -> str | None:
    if metric.min_requests is not None and candidate.denominator < metric.min_requests:
        return f"the candidate has {candidate.denominator:.0f} requests pooled in the stage, minRequests is {metric.min_requests}"
    return None


def _versus_stable(
    metric: MetricSpec, candidate: Counts, stable: Counts | None, alpha: float, notes: list[str]
) -> list[SequentialResult]:
    compare = metric.compare_to_baseline
    if compare is None:
        return []
    if stable is None:
        notes.append("not compared with the stable version (no stable version measured)")
        return []
    if stable.denominator <= 0 or stable.denominator < STABLE_SHARE_TO_COMPARE * candidate.denominator:
        notes.append(
            f"not compared with the stable version: it served {stable.denominator:.0f} requests in the stage, "
            f"under {STABLE_SHARE_TO_COMPARE:.0%} of the candidate's {candidate.denominator:.0f}"
        )
        return []
    results = []
    if compare.max_drop is not None:
        results.append(against_stable(metric.name, candidate, stable, "maxDrop", compare.max_drop, alpha))
    if compare.max_increase is not None:
        results.append(against_stable(metric.name, candidate, stable, "maxIncrease", compare.max_increase, alpha))
    return results


def bound_result(result: SequentialResult) -> BoundResult:
    """The status form of one sequential verdict, with the numbers that explain it."""
    return BoundResult(
        bound=result.limit_name,
        limit=result.limit,
        verdict=result.verdict,
        compared=result.compared,
        estimate=_finite(result.estimate),
        lower=_finite(result.lower),
        upper=_finite(result.upper),
        evidence=_finite(result.evidence),
        alpha=result.alpha,
        reason=result.reason,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _combine(verdicts: Sequence[Verdict]) -> Verdict:
    if "fail" in verdicts:
        return "fail"
    if not verdicts or "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def _sequential_result(
    metric: MetricSpec,
    results: Sequence[SequentialResult],
    pool: MetricPool,
    candidate: Counts,
    stable: Counts | None,
    gap: str | None,
    shortage: str | None,
    notes: Sequence[str],
    extra: Sequence[tuple[Verdict, str]] = (),
    shown: tuple[float | None, float | None] | None = None,
) -> MetricResult:
    """Combine the bounds' verdicts: any fail fails; a gap or anything undecided is inconclusive."""
    verdicts: list[Verdict] = [r.verdict for r in results] + [verdict for verdict, _ in extra]
    verdict = _combine(verdicts)
    if shortage is not None:
        verdict = "inconclusive"
    deciding = [r.reason for r in results if r.verdict == verdict] + [why for v, why in extra if v == verdict]
    if shortage is not None:
        deciding = [shortage]
    elif not verdicts:
        deciding = ["nothing could be judged"]
    if gap is not None and verdict != "fail":
        # No data this window: never a pass on what came before (Prometheus down holds the release).
        verdict = "inconclusive"
        deciding = [f"no data in this window ({gap}); pooled so far: {_pooled_text(metric, candidate, stable)}"]
    value, baseline = shown if shown is not None else (candidate.value, stable.value if stable is not None else None)
    return MetricResult(
        name=metric.name,
        candidate=_finite(value),
        baseline=_finite(baseline),
        verdict=verdict,
        samples=round(candidate.denominator),
        message="; ".join([*deciding, *notes]),
        judge="sequential"
        if results and (verdict != "fail" or any(r.verdict == "fail" for r in results))
        else "threshold",
        undecided=verdict == "inconclusive" and gap is None,
        bounds=[bound_result(r) for r in results],
        pool=pool,
    )


def _pooled_text(metric: MetricSpec, candidate: Counts, stable: Counts | None) -> str:
    text = f"candidate {candidate.numerator:.0f}/{candidate.denominator:.0f}"
    if stable is not None:
        text += f", stable {stable.numerator:.0f}/{stable.denominator:.0f}"
    return text


# --- latency as a slow share ---------------------------------------------------------------------------------


def _buckets(observation: Observation | None) -> dict[str, float] | None:
    if not isinstance(observation, Measurement) or observation.series is None:
        return None
    return dict(observation.series)


def _slow_parts(bound: SlowShareBound, buckets: dict[str, float] | None) -> tuple[Increase | None, Increase | None]:
    if buckets is None or "+Inf" not in buckets:
        return None, None
    total = buckets["+Inf"]
    failing = slow_increase(total, buckets[bound.fail_le]) if bound.fail_le in buckets else None
    passing = slow_increase(total, buckets[bound.pass_le]) if bound.pass_le in buckets else None
    return failing, passing


def quantile_from_buckets(buckets: Mapping[str, float], quantile: float) -> float | None:
    """The quantile interpolated linearly inside its bucket, as PromQL's ``histogram_quantile`` does (display only)."""
    points = sorted((float(le), count) for le, count in buckets.items())
    if not points or points[-1][1] <= 0:
        return None
    rank = quantile * points[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in points:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


def _slow_share(
    metric: MetricSpec, window: Window, pool: MetricPool | None, until: str | None, alpha: float
) -> MetricResult:
    plan = plan_for(metric)
    max_increase = _max_increase(metric)
    if max_increase is not None:
        return _slow_share_versus_stable(metric, max_increase, window, pool, until, alpha)
    assert metric.max is not None and plan.quantile is not None
    buckets = _buckets(window.candidate)
    labels = list(buckets) if buckets else [part.part.removeprefix("le=") for part in (pool.parts if pool else [])]
    if not labels:
        return _threshold(metric, window).model_copy(update={"pool": pool})
    try:
        bound = slow_share_bound(plan.quantile, metric.max / plan.scale, labels)
    except ValueError as unusable:
        result = _threshold(metric, window)
        return result.model_copy(update={"message": f"{result.message}; slow share not judged: {unusable}"})
    failing, passing = _slow_parts(bound, buckets)
    parts: dict[str, tuple[Increase | None, Increase | None]] = {}
    if bound.fail_le is not None:
        parts[f"le={bound.fail_le}"] = (failing, None)
    if bound.pass_le is not None:
        parts[f"le={bound.pass_le}"] = (passing, None)
    pooled = add_window(pool, parts, until, with_stable=False) if window.fresh else pool or MetricPool()
    fail_counts, _ = _counts(_part(pooled, f"le={bound.fail_le}"))
    pass_counts, _ = _counts(_part(pooled, f"le={bound.pass_le}"))
    gap = None
    if window.fresh:
        gap = _gap_reason(Window(window.candidate)) or (
            None if failing or passing else "the histogram has no +Inf bucket"
        )
    name = f"{metric.name} share slower than {metric.max:g}s"
    shortage = _min_requests_shortage(metric, fail_counts if bound.fail_le is not None else pass_counts)
    results = [] if shortage else [judge_slow_share(name, bound, fail_counts, pass_counts, alpha)]
    extra: list[tuple[Verdict, str]] = []
    shown_p99 = quantile_from_buckets(buckets, plan.quantile) if buckets else None
    shown = (shown_p99 * plan.scale if shown_p99 is not None else None, None)
    rest = metric.model_copy(update={"max": None})
    if rest.min is not None or rest.compare_to_baseline is not None:
        threshold = _threshold(rest, window)
        extra.append((threshold.verdict, threshold.message))
    counted = fail_counts if bound.fail_le is not None else pass_counts
    return _sequential_result(metric, results, pooled, counted, None, gap, shortage, [], extra, shown)


def _histogram_parts(buckets: dict[str, float] | None) -> dict[str, Increase] | None:
    """A window's slow requests above every finite boundary, over its requests: one part per ``le``."""
    if buckets is None or "+Inf" not in buckets:
        return None
    total = buckets["+Inf"]
    return {f"le={le}": slow_increase(total, count) for le, count in buckets.items() if le != "+Inf"}


def _pooled_histogram(pool: MetricPool, who: Literal["candidate", "stable"]) -> dict[str, Counts]:
    """Slow counts above each boundary, pooled over the stage, keyed by the ``le`` label."""
    counts: dict[str, Counts] = {}
    for part in pool.parts:
        version = part.candidate if who == "candidate" else part.stable
        if version is not None and part.part.startswith("le="):
            counts[part.part.removeprefix("le=")] = Counts(version.numerator, version.denominator)
    return counts


def stable_quantile_boundary(slow_above: Mapping[str, Counts], quantile: float) -> str | None:
    """The smallest boundary the stable version's pooled share of slower requests is within ``1 - quantile`` of.

    Rounded *up* to a boundary on purpose: the candidate is then held to
    the stable version's quantile or a little more, never less, so noise in
    the stable version's estimate cannot fail a candidate that is as fast.
    None until the stable version has served enough requests that
    ``MIN_EVENTS`` of them would be slower than its quantile (1,000 for
    p99): fewer cannot place the quantile.
    """
    finite = sorted(
        ((float(le), le, counts) for le, counts in slow_above.items() if math.isfinite(float(le))),
        key=lambda item: item[0],
    )
    total = max((counts.denominator for _, _, counts in finite), default=0.0)
    if total * (1.0 - quantile) < MIN_EVENTS:
        return None
    for _, label, counts in finite:
        if counts.denominator > 0 and counts.numerator / counts.denominator <= 1.0 - quantile:
            return label
    return None


def _slow_share_versus_stable(
    metric: MetricSpec, max_increase: float, window: Window, pool: MetricPool | None, until: str | None, alpha: float
) -> MetricResult:
    """Latency with ``maxIncrease``: the candidate's p99 within the stable version's p99 plus ``max_increase`` seconds.

    Both versions' histograms are pooled whole (a part per boundary), so
    the stable version's p99 is read from all its requests in the stage and
    follows it as it is measured.  The target, that p99 rounded up to a
    boundary plus ``max_increase``, can move between checks as the stable
    version's estimate does, by a bucket at a time (TF Serving's boundaries
    are 1.8 apart); each verdict at a target is the sequential test's, and
    the few adjacent targets a stage can visit are not corrected for.
    ``max`` (if set) is judged on the same pooled counts.
    """
    plan = plan_for(metric)
    assert plan.quantile is not None
    compared = _compared(metric, window, pool)
    candidate_parts = _histogram_parts(_buckets(window.candidate))
    stable_parts = _histogram_parts(_buckets(window.stable)) if compared else None
    parts: WindowParts | None = None
    if candidate_parts is not None and (stable_parts is not None or not compared):
        names = set(candidate_parts) | set(stable_parts or {})
        parts = {
            name: (
                candidate_parts.get(name),
                (stable_parts or {}).get(name) if compared else None,
            )
            for name in names
        }
    pooled = add_window(pool, parts, until, with_stable=compared) if window.fresh else pool or MetricPool()
    gap = _gap_reason(Window(window.candidate, window.stable if compared else None)) if window.fresh else None
    if gap is None and window.fresh and parts is None:
        gap = "the histogram has no +Inf bucket"
    candidate = _pooled_histogram(pooled, "candidate")
    stable = _pooled_histogram(pooled, "stable") if compared else {}
    labels = list(candidate) or list(stable)
    requests = max((counts.denominator for counts in candidate.values()), default=0.0)
    stable_requests = max((counts.denominator for counts in stable.values()), default=0.0)
    counted = Counts(0.0, requests)
    shortage = _min_requests_shortage(metric, counted)
    results: list[SequentialResult] = []
    notes: list[str] = []
    extra: list[tuple[Verdict, str]] = []
    if shortage is None and labels:
        if metric.max is not None:
            bound = slow_share_bound(plan.quantile, metric.max / plan.scale, labels)
            results.append(_judge_slow_at(f"{metric.name} share slower than {metric.max:g}s", bound, candidate, alpha))
        if not compared:
            notes.append("not compared with the stable version (no stable version measured)")
        elif stable_requests < max(STABLE_SHARE_TO_COMPARE * requests, 1.0):
            notes.append(
                f"not compared with the stable version: it served {stable_requests:.0f} requests in the stage, "
                f"under {STABLE_SHARE_TO_COMPARE:.0%} of the candidate's {requests:.0f}"
            )
        else:
            boundary = stable_quantile_boundary(stable, plan.quantile)
            if boundary is None:
                why = (
                    f"{metric.name} vs stable: the stable version's p{plan.quantile * 100:g} is not placed yet "
                    f"({stable_requests:.0f} requests pooled, {math.ceil(MIN_EVENTS / (1.0 - plan.quantile))} needed)"
                )
                extra.append(("inconclusive", why))
            else:
                target = float(boundary) * plan.scale + max_increase
                bound = slow_share_bound(plan.quantile, target / plan.scale, labels)
                name = (
                    f"{metric.name} share slower than {target:g}s "
                    f"(stable p{plan.quantile * 100:g} <= {float(boundary) * plan.scale:g}s + maxIncrease {max_increase:g}s)"
                )
                results.append(_judge_slow_at(name, bound, candidate, alpha))
    shown_p99 = quantile_from_buckets(_buckets(window.candidate) or {}, plan.quantile)
    stable_p99 = quantile_from_buckets(_buckets(window.stable) or {}, plan.quantile) if compared else None
    shown = (
        shown_p99 * plan.scale if shown_p99 is not None else None,
        stable_p99 * plan.scale if stable_p99 is not None else None,
    )
    drop_only = _compare_drop_only(metric)
    rest = metric.model_copy(update={"max": None, "compare_to_baseline": drop_only})
    if rest.min is not None or drop_only is not None:
        threshold = _threshold(rest, window)
        extra.append((threshold.verdict, threshold.message))
    return _sequential_result(metric, results, pooled, counted, None, gap, shortage, notes, extra, shown)


def _compare_drop_only(metric: MetricSpec) -> CompareToBaseline | None:
    """``compareToBaseline`` without ``maxIncrease``: what stays a plain threshold on a latency's p99."""
    compare = metric.compare_to_baseline
    if compare is None or compare.max_drop is None:
        return None
    return CompareToBaseline(max_drop=compare.max_drop)


def _judge_slow_at(
    name: str, bound: SlowShareBound, slow_above: Mapping[str, Counts], alpha: float
) -> SequentialResult:
    none = Counts(0.0, 0.0)
    fail_counts = slow_above.get(bound.fail_le, none) if bound.fail_le is not None else none
    pass_counts = slow_above.get(bound.pass_le, none) if bound.pass_le is not None else none
    return judge_slow_share(name, bound, fail_counts, pass_counts, alpha)


# --- pooled means and plain thresholds -----------------------------------------------------------------------


def _mean(metric: MetricSpec, window: Window, pool: MetricPool | None, until: str | None) -> MetricResult:
    compared = _compared(metric, window, pool)
    parts: WindowParts = {"": (_increase(window.candidate), _increase(window.stable) if compared else None)}
    pooled = add_window(pool, parts, until, with_stable=compared, cap=False) if window.fresh else pool or MetricPool()
    candidate, stable = _counts(_part(pooled, ""))
    gap = _gap_reason(Window(window.candidate, window.stable if compared else None)) if window.fresh else None
    if gap is not None:
        return MetricResult(
            name=metric.name,
            verdict="inconclusive",
            message=f"no data in this window ({gap})",
            candidate=_finite(candidate.value),
            baseline=_finite(stable.value) if stable else None,
            samples=round(candidate.denominator),
            pool=pooled,
        )
    result = judge(metric, _mean_measurement(candidate), _mean_measurement(stable) if stable is not None else None)
    return result.model_copy(
        update={
            "message": f"pooled over the stage: {result.message}",
            "pool": pooled,
            "undecided": result.verdict == "inconclusive",
        }
    )


def _mean_measurement(counts: Counts) -> Observation:
    if counts.denominator <= 0:
        return Unmeasured("no events pooled in the stage yet")
    return Measurement(value=counts.numerator / counts.denominator, samples=round(counts.denominator))


def _threshold(metric: MetricSpec, window: Window) -> MetricResult:
    """A plain threshold on the window's value (a histogram's quantile for latency)."""
    plan: QueryPlan | None
    try:
        plan = plan_for(metric)
    except ValueError:
        plan = None
    candidate, stable = window.candidate, window.stable
    if plan is not None and plan.grouped is not None and plan.quantile is not None:
        candidate, stable = _quantile(candidate, plan), _quantile(stable, plan) if stable is not None else None
    return judge(metric, candidate, stable)


def _quantile(observation: Observation, plan: QueryPlan) -> Observation:
    buckets = _buckets(observation)
    if buckets is None:
        return observation
    assert plan.quantile is not None
    value = quantile_from_buckets(buckets, plan.quantile)
    if value is None:
        return Unmeasured("no requests in the window's histogram")
    return Measurement(value=value * plan.scale, samples=round(buckets.get("+Inf", 0.0)))


# --- distributions: prediction drift and AUC -------------------------------------------------------------------


def _series(observation: Observation | None) -> dict[str, float] | None:
    if not isinstance(observation, Measurement) or observation.series is None:
        return None
    return dict(observation.series)


def _distribution_parts(metric: MetricSpec, series: dict[str, float] | None) -> dict[str, Increase] | None:
    """A window's grouped counts as pooled parts: each class's share of answers, or each bucket's of its class."""
    if series is None:
        return None
    if kind_of(metric) == "drift":
        total = sum(series.values())
        return {f"predicted={label}": Increase(count, total) for label, count in series.items()}
    positive = metric.positive_class or ""
    grouped: dict[str, dict[str, float]] = {"positive": {}, "negative": {}}
    for key, count in series.items():
        actual, _, le = key.partition("|")
        cells = grouped["positive" if actual == positive else "negative"]
        cells[le] = cells.get(le, 0.0) + count
    parts: dict[str, Increase] = {}
    for side, buckets in grouped.items():
        total = buckets.get("+Inf", 0.0)
        for le, count in buckets.items():
            parts[f"{side} le={le}"] = Increase(count, total)
    return parts


def _distribution(
    metric: MetricSpec, window: Window, pool: MetricPool | None, until: str | None, alpha: float
) -> MetricResult:
    compared = _compared(metric, window, pool)
    candidate_parts = _distribution_parts(metric, _series(window.candidate))
    stable_parts = _distribution_parts(metric, _series(window.stable)) if compared else None
    names = set(candidate_parts or {}) | set(stable_parts or {})
    parts: WindowParts | None = None
    if candidate_parts is not None and (stable_parts is not None or not compared):
        parts = {
            name: (
                candidate_parts.get(name, Increase(0.0, _total(candidate_parts))),
                stable_parts.get(name, Increase(0.0, _total(stable_parts))) if stable_parts is not None else None,
            )
            for name in names
        }
    pooled = add_window(pool, parts, until, with_stable=compared) if window.fresh else pool or MetricPool()
    gap = _gap_reason(Window(window.candidate, window.stable if compared else None)) if window.fresh else None
    if gap is None and window.fresh and parts is None:
        gap = "no grouped counts in the window"
    bounds: list[BoundResult] = []
    notes: list[str] = []
    if kind_of(metric) == "drift":
        candidate = {p.part.removeprefix("predicted="): p.candidate.numerator for p in pooled.parts}
        if not compared:
            notes.append("no stable version to compare the predicted classes with")
        elif metric.max is not None:
            stable = {p.part.removeprefix("predicted="): p.stable.numerator for p in pooled.parts if p.stable}
            bounds.append(total_variation(metric.name, candidate, stable, metric.max, alpha).bound)
        value = baseline = None
    else:
        candidate_auc = _auc(pooled, "candidate")
        stable_auc = _auc(pooled, "stable") if compared else None
        if metric.min is not None:
            bounds.append(auc_bound(metric.name, candidate_auc, None, "min", metric.min, alpha).bound)
        compare = metric.compare_to_baseline
        if compare is not None and compare.max_drop is not None:
            if compared:
                bounds.append(
                    auc_bound(metric.name, candidate_auc, stable_auc, "maxDrop", compare.max_drop, alpha).bound
                )
            else:
                notes.append("not compared with the stable version (no stable version measured)")
        value = candidate_auc.value if candidate_auc else None
        baseline = stable_auc.value if stable_auc else None
    verdict = _combine([b.verdict for b in bounds])
    reasons = [b.reason for b in bounds if b.verdict == verdict] or ["nothing could be judged"]
    if gap is not None and verdict != "fail":
        verdict, reasons = "inconclusive", [f"no data in this window ({gap})"]
    samples = max((p.candidate.denominator for p in pooled.parts), default=0.0)
    return MetricResult(
        name=metric.name,
        candidate=_finite(value),
        baseline=_finite(baseline),
        verdict=verdict,
        samples=round(samples),
        message="; ".join([*reasons, *notes]),
        judge="sequential",
        undecided=verdict == "inconclusive" and gap is None,
        bounds=bounds,
        pool=pooled,
    )


def _total(parts: Mapping[str, Increase] | None) -> float:
    return max((part.denominator for part in (parts or {}).values()), default=0.0)


def _auc(pool: MetricPool, who: Literal["candidate", "stable"]) -> Auc | None:
    sides: dict[str, dict[float, float]] = {"positive": {}, "negative": {}}
    for part in pool.parts:
        side, _, le = part.part.partition(" le=")
        counts = part.candidate if who == "candidate" else part.stable
        if counts is not None and side in sides:
            sides[side][float(le)] = counts.numerator
    return auc_from_buckets(sides["positive"], sides["negative"])
