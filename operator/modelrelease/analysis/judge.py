"""The threshold judge: one value against a metric's bounds and the stable version's, for one check.

The operator uses it for what is not judged sequentially (``check.kind_of``):
a plain ``query``, ``f1``, the pooled mean of ``mae``/``mse``, and the p99
shown for latency's ``min`` and ``compareToBaseline.maxDrop``.  A fail here is one failed
check; ``failureLimit`` of them roll back.  (Before the sequential judge it
judged every metric on each interval; ``make bench-judgment`` still runs it
that way, as the per-interval judge it replaced.)

The rules, in order:

1. No usable candidate value (no data, NaN, Prometheus unreachable, query
   refused) -> **inconclusive**.  Never a pass: a release must not be
   promoted on silence.  Never a fail either: a quiet or unobserved service
   is held (and paused after ``inconclusiveLimit``), not rolled back.
2. Fewer samples than ``minRequests`` -> **inconclusive**.  When the metric
   gives a count and ``minRequests`` is unset, ``DEFAULT_MIN_SAMPLES``
   applies: a ratio over a handful of requests says almost nothing (3 right
   answers out of 3 is "100% accuracy"), so it must neither promote nor roll
   back.  A plain ``query`` has no count, so ``minRequests`` on one cannot be
   honoured and the check stays inconclusive, saying so.
3. Each bound that is set is checked (``min``, ``max``, and with a usable
   stable value ``compareToBaseline.maxDrop`` / ``maxIncrease``, absolute
   differences in the metric's unit).  A bound **passes** when the observed
   value is within it.  Outside it, a proportion **fails** only when its
   one-sided 95% confidence bound is outside too (see ``stats``); otherwise
   the bound is **inconclusive** and the stage waits for more data.  Values
   that are not proportions (latency, MAE, F1, plain queries) fail as soon
   as they are outside.
4. Any failing bound fails the metric; otherwise any inconclusive bound, or
   no bound that could be checked at all, makes it inconclusive; otherwise
   it passes.

The stable version's value is used only when it is itself measured with
enough samples.  When it is not (no stable version yet, or the stable
version gets no traffic, as at 100%), the comparison is skipped with a note
and the thresholds decide; with no thresholds the metric is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelrelease.analysis.provider import Measurement, Observation, Unmeasured
from modelrelease.analysis.stats import difference_interval, wilson_interval
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricResult, Verdict

DEFAULT_MIN_SAMPLES = 20
"""Events a counted metric needs in the window when ``minRequests`` is unset.

Twenty keeps a single check from turning on a handful of requests while a
modest service (one request every couple of seconds at 30s intervals) still
gets judged; several passing checks per stage (``minChecks``) then add up
to a few hundred events before a stage completes.
"""


@dataclass(frozen=True)
class BoundCheck:
    verdict: Verdict
    reason: str


def required_samples(metric: MetricSpec, measurement: Measurement) -> int:
    if metric.min_requests is not None:
        return metric.min_requests
    return DEFAULT_MIN_SAMPLES if measurement.samples is not None else 0


def _shortage(metric: MetricSpec, measurement: Measurement, who: str) -> str | None:
    """Why ``measurement`` is too thin to judge, or None when it is enough."""
    if not math.isfinite(measurement.value):
        return f"{who} value is {measurement.value}"
    required = required_samples(metric, measurement)
    if required == 0:
        return None
    if measurement.samples is None:
        return f"minRequests is {required} but a plain query gives no request count; use a ratio metric"
    if measurement.samples < required:
        return f"{who} has {measurement.samples} requests in the window, {required} needed"
    return None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _below_min(m: Measurement, limit: float) -> BoundCheck:
    if m.value >= limit:
        return BoundCheck("pass", f"{_fmt(m.value)} >= min {_fmt(limit)}")
    if m.binomial:
        assert m.numerator is not None and m.denominator is not None
        _, upper = wilson_interval(m.numerator, m.denominator)
        if upper >= limit:
            return BoundCheck(
                "inconclusive",
                f"{_fmt(m.value)} < min {_fmt(limit)} but within noise for {m.samples} samples "
                f"(95% upper bound {_fmt(upper)})",
            )
        return BoundCheck("fail", f"{_fmt(m.value)} < min {_fmt(limit)} (95% upper bound {_fmt(upper)})")
    return BoundCheck("fail", f"{_fmt(m.value)} < min {_fmt(limit)}")


def _above_max(m: Measurement, limit: float) -> BoundCheck:
    if m.value <= limit:
        return BoundCheck("pass", f"{_fmt(m.value)} <= max {_fmt(limit)}")
    if m.binomial:
        assert m.numerator is not None and m.denominator is not None
        lower, _ = wilson_interval(m.numerator, m.denominator)
        if lower <= limit:
            return BoundCheck(
                "inconclusive",
                f"{_fmt(m.value)} > max {_fmt(limit)} but within noise for {m.samples} samples "
                f"(95% lower bound {_fmt(lower)})",
            )
        return BoundCheck("fail", f"{_fmt(m.value)} > max {_fmt(limit)} (95% lower bound {_fmt(lower)})")
    return BoundCheck("fail", f"{_fmt(m.value)} > max {_fmt(limit)}")


def _against_baseline(metric: MetricSpec, c: Measurement, b: Measurement) -> list[BoundCheck]:
    compare = metric.compare_to_baseline
    assert compare is not None
    difference = c.value - b.value
    bounds: tuple[float, float] | None = None
    if c.binomial and b.binomial:
        assert c.numerator is not None and c.denominator is not None
        assert b.numerator is not None and b.denominator is not None
        bounds = difference_interval(c.numerator, c.denominator, b.numerator, b.denominator)
    versus = f"candidate {_fmt(c.value)} vs stable {_fmt(b.value)}"
    checks = []
    if compare.max_drop is not None:
        allowed = -compare.max_drop
        if difference >= allowed:
            checks.append(BoundCheck("pass", f"{versus}: drop within maxDrop {_fmt(compare.max_drop)}"))
        elif bounds is not None and bounds[1] >= allowed:
            checks.append(
                BoundCheck(
                    "inconclusive",
                    f"{versus}: drop {_fmt(-difference)} > maxDrop {_fmt(compare.max_drop)} but within noise "
                    f"(95% bound on the drop {_fmt(-bounds[1])})",
                )
            )
        else:
            checks.append(BoundCheck("fail", f"{versus}: drop {_fmt(-difference)} > maxDrop {_fmt(compare.max_drop)}"))
    if compare.max_increase is not None:
        allowed = compare.max_increase
        if difference <= allowed:
            checks.append(BoundCheck("pass", f"{versus}: rise within maxIncrease {_fmt(allowed)}"))
        elif bounds is not None and bounds[0] <= allowed:
            checks.append(
                BoundCheck(
                    "inconclusive",
                    f"{versus}: rise {_fmt(difference)} > maxIncrease {_fmt(allowed)} but within noise "
                    f"(95% bound on the rise {_fmt(bounds[0])})",
                )
            )
        else:
            checks.append(BoundCheck("fail", f"{versus}: rise {_fmt(difference)} > maxIncrease {_fmt(allowed)}"))
    return checks


def _usable_baseline(metric: MetricSpec, baseline: Observation | None) -> tuple[Measurement | None, str]:
    if baseline is None:
        return None, "no stable version to compare with"
    if isinstance(baseline, Unmeasured):
        return None, f"stable version: {baseline.reason}"
    shortage = _shortage(metric, baseline, "stable version")
    if shortage is not None:
        return None, shortage
    return baseline, ""


def judge(metric: MetricSpec, candidate: Observation, baseline: Observation | None) -> MetricResult:
    """The verdict on one metric for one check; ``baseline`` is None when there is no stable version."""
    baseline_value = baseline.value if isinstance(baseline, Measurement) else None
    if isinstance(candidate, Unmeasured):
        return _result(metric, "inconclusive", candidate.reason, None, baseline_value, None)
    shortage = _shortage(metric, candidate, "candidate")
    if shortage is not None:
        value = candidate.value if math.isfinite(candidate.value) else None
        return _result(metric, "inconclusive", shortage, value, baseline_value, candidate.samples)

    checks: list[BoundCheck] = []
    if metric.min is not None:
        checks.append(_below_min(candidate, metric.min))
    if metric.max is not None:
        checks.append(_above_max(candidate, metric.max))
    notes: list[str] = []
    if metric.compare_to_baseline is not None:
        usable, why_not = _usable_baseline(metric, baseline)
        if usable is not None:
            checks.extend(_against_baseline(metric, candidate, usable))
        else:
            notes.append(f"not compared with the stable version ({why_not})")

    verdict: Verdict
    if any(check.verdict == "fail" for check in checks):
        verdict = "fail"
        reasons = [check.reason for check in checks if check.verdict == "fail"]
    elif not checks:
        verdict = "inconclusive"
        reasons = ["nothing could be judged"]
    elif any(check.verdict == "inconclusive" for check in checks):
        verdict = "inconclusive"
        reasons = [check.reason for check in checks if check.verdict == "inconclusive"]
    else:
        verdict = "pass"
        reasons = [check.reason for check in checks]
    message = "; ".join(reasons + notes)
    if candidate.samples is not None:
        message += f" ({candidate.samples} samples)"
    return _result(metric, verdict, message, candidate.value, baseline_value, candidate.samples)


def _result(
    metric: MetricSpec,
    verdict: Verdict,
    message: str,
    candidate: float | None,
    baseline: float | None,
    samples: int | None,
) -> MetricResult:
    if baseline is not None and not math.isfinite(baseline):
        baseline = None
    return MetricResult(
        name=metric.name, candidate=candidate, baseline=baseline, verdict=verdict, samples=samples, message=message
    )
