"""Latency against the stable version: "p99 within stable's p99 plus maxIncrease", pooled and sequential.

The histograms are TF Serving's (microseconds, boundaries 10 * 1.8^i), the
latencies log-normal; every simulation has a fixed seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelrelease.analysis import Measurement, Window, judge_check, kind_of
from modelrelease.analysis.check import sequential_bounds, stable_quantile_boundary
from modelrelease.analysis.sequential import Counts
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricResult

BOUNDARIES = [10 * 1.8**i for i in range(33)]
LABELS = [f"{b:g}" for b in BOUNDARIES]


def latency(**fields: Any) -> MetricSpec:
    return MetricSpec.model_validate({"name": "latency", "template": "tfserving-latency-p99", **fields})


def histogram(rng: np.random.Generator, requests: int, median_s: float, shift_s: float = 0.0) -> Measurement:
    """One window's cumulative buckets for ``requests`` log-normal latencies (p99 about 3 x median), shifted."""
    seconds = rng.lognormal(np.log(median_s), 0.5, requests) + shift_s
    micros = np.sort(seconds * 1e6)
    cumulative = np.searchsorted(micros, BOUNDARIES, side="right")
    series = (*zip(LABELS, (float(c) for c in cumulative), strict=True), ("+Inf", float(requests)))
    return Measurement(float("nan"), requests, series=series)


def stamp(check: int) -> str:
    return f"2026-01-01T12:{check // 60:02d}:{check % 60:02d}Z"


def run(
    metric: MetricSpec, rng: np.random.Generator, checks: int, shift_s: float, per_check: int = 400
) -> MetricResult:
    """Checks until a verdict other than inconclusive, or ``checks`` of them; the last result."""
    results: list[MetricResult] = []
    for n in range(1, checks + 1):
        window = Window(histogram(rng, per_check, 0.05, shift_s), histogram(rng, per_check, 0.05))
        results = judge_check([metric], 0.99, {"latency": window}, results, stamp(n))
        if results[0].verdict != "inconclusive":
            break
    return results[0]


def test_max_increase_on_latency_is_sequential_and_counts_as_a_bound_of_its_own() -> None:
    assert kind_of(latency(compareToBaseline={"maxIncrease": 0.05})) == "slow_share"
    assert sequential_bounds(latency(max=0.25, compareToBaseline={"maxIncrease": 0.05})) == 2
    assert kind_of(latency(compareToBaseline={"maxDrop": 0.05})) == "threshold"


def test_a_candidate_far_slower_than_stable_fails_with_both_p99s_and_the_target_named() -> None:
    result = run(latency(compareToBaseline={"maxIncrease": 0.05}), np.random.default_rng(1), 60, shift_s=0.3)
    assert result.verdict == "fail" and result.judge == "sequential"
    assert "+ maxIncrease 0.05s" in result.message and "stable p99 <=" in result.message
    assert result.candidate is not None and result.baseline is not None
    assert result.candidate > result.baseline + 0.2
    assert result.pool is not None and all(part.stable is not None for part in result.pool.parts)
    assert len(result.pool.parts) == len(BOUNDARIES)


def test_a_candidate_as_fast_as_stable_is_never_failed_over_long_stages_and_mostly_passes() -> None:
    rng = np.random.default_rng(7)
    metric = latency(compareToBaseline={"maxIncrease": 0.02})
    verdicts = [run(metric, rng, 40, shift_s=0.0).verdict for _ in range(60)]
    assert verdicts.count("fail") == 0
    assert verdicts.count("pass") >= 45, verdicts


def test_until_the_stable_p99_can_be_placed_the_comparison_is_inconclusive_and_says_why() -> None:
    rng = np.random.default_rng(3)
    window = Window(histogram(rng, 300, 0.05, 1.0), histogram(rng, 300, 0.05))
    result = judge_check([latency(compareToBaseline={"maxIncrease": 0.05})], 0.99, {"latency": window}, [], stamp(1))[0]
    assert result.verdict == "inconclusive" and result.undecided
    assert "not placed yet (300 requests pooled, 1000 needed)" in result.message


def test_the_stable_quantile_is_rounded_up_to_a_boundary() -> None:
    slow_above = {"100": Counts(500, 1000), "200": Counts(12, 1000), "400": Counts(9, 1000), "800": Counts(0, 1000)}
    assert stable_quantile_boundary(slow_above, 0.99) == "400"
    assert stable_quantile_boundary({"100": Counts(5, 900)}, 0.99) is None


def test_max_and_max_increase_are_judged_on_the_same_pooled_histogram() -> None:
    rng = np.random.default_rng(5)
    metric = latency(max=0.1, compareToBaseline={"maxIncrease": 0.5})
    result = run(metric, rng, 60, shift_s=0.2)
    assert result.verdict == "fail"
    assert "share slower than 0.1s" in result.message
