"""judge_check: each metric's window pooled over the stage and judged, as the operator does on every check."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelrelease.analysis import Measurement, Unmeasured, Window, alpha_for, judge_check, kind_of
from modelrelease.analysis.check import quantile_from_buckets
from modelrelease.api.spec import AnalysisSpec, MetricSpec
from modelrelease.api.status import MetricResult


def metric(**fields: Any) -> MetricSpec:
    return MetricSpec.model_validate({"name": "m", **fields})


def ratio(successes: float, trials: float) -> Measurement:
    value = successes / trials if trials else float("nan")
    return Measurement(value, round(trials), successes, trials, proportion=True)


ACCURACY = metric(name="accuracy", template="accuracy", min=0.5, compareToBaseline={"maxDrop": 0.01})


def check(
    metrics: list[MetricSpec], windows: dict[str, Window], previous: list[MetricResult], until: str
) -> list[MetricResult]:
    return judge_check(metrics, 0.99, windows, previous, until)


def stamp(second: int) -> str:
    return f"2026-01-01T12:00:{second:02d}Z"


def test_windows_add_up_over_the_stage_and_a_clear_drop_fails_naming_both_versions_counts_and_the_evidence() -> None:
    results: list[MetricResult] = []
    for second in range(5, 60, 5):
        window = Window(ratio(730, 760), ratio(1028, 1046))
        results = check([ACCURACY], {"accuracy": window}, results, stamp(second))
        if results[0].verdict == "fail":
            break
    result = results[0]
    assert result.verdict == "fail" and result.judge == "sequential"
    assert result.pool is not None and result.pool.intervals >= 2
    drop = next(b for b in result.bounds if b.bound == "maxDrop")
    assert drop.verdict == "fail" and drop.lower is not None and drop.lower > 0.01
    assert drop.evidence is not None and drop.alpha is not None and drop.evidence >= 1 / drop.alpha
    n = result.pool.intervals
    assert f"({730 * n}/{760 * n}) vs stable" in result.message and f"({1028 * n}/{1046 * n})" in result.message
    assert "maxDrop 0.01 with evidence" in result.message


def test_the_same_window_handed_in_twice_is_counted_once() -> None:
    window = {"accuracy": Window(ratio(95, 100), ratio(96, 100))}
    first = check([ACCURACY], window, [], stamp(10))
    again = check([ACCURACY], window, first, stamp(10))
    assert again[0].pool == first[0].pool


def test_a_window_without_data_is_inconclusive_for_want_of_data_and_its_time_goes_to_the_next() -> None:
    first = check([ACCURACY], {"accuracy": Window(ratio(950, 1000), ratio(960, 1000))}, [], stamp(10))
    gap = check([ACCURACY], {"accuracy": Window(Unmeasured("Prometheus unreachable"), None)}, first, stamp(20))
    result = gap[0]
    assert result.verdict == "inconclusive" and not result.undecided
    assert result.pool is not None and result.pool.gaps == 1 and result.pool.counted_until == stamp(10)
    assert "Prometheus unreachable" in result.message and "candidate 950/1000" in result.message


def test_too_few_requests_wait_undecided_and_never_pass_or_fail() -> None:
    terrible = check([ACCURACY], {"accuracy": Window(ratio(1, 20), ratio(20, 20))}, [], stamp(10))[0]
    assert terrible.verdict == "inconclusive" and terrible.undecided
    assert "too few requests" in terrible.message


def test_without_a_stable_version_serving_the_comparison_is_left_out_and_the_bound_decides() -> None:
    full = check([ACCURACY], {"accuracy": Window(ratio(950, 1000), ratio(0, 0))}, [], stamp(10))[0]
    assert full.verdict == "pass"
    assert "not compared with the stable version" in full.message
    assert [b.bound for b in full.bounds] == ["min"]


def test_an_error_rate_of_zero_passes_its_max_once_enough_requests_were_pooled() -> None:
    errors = metric(name="errors", template="tfserving-error-rate", max=0.01)
    results: list[MetricResult] = []
    verdicts = []
    for second in range(5, 60, 5):
        results = check([errors], {"errors": Window(ratio(0, 300))}, results, stamp(second))
        verdicts.append(results[0].verdict)
    assert verdicts[0] == "inconclusive" and verdicts[-1] == "pass"


def test_min_requests_counts_the_pooled_requests() -> None:
    errors = metric(name="errors", template="tfserving-error-rate", max=0.5, minRequests=150)
    first = check([errors], {"errors": Window(ratio(0, 100))}, [], stamp(10))
    assert first[0].verdict == "inconclusive" and "minRequests is 150" in first[0].message
    second = check([errors], {"errors": Window(ratio(0, 100))}, first, stamp(20))
    assert second[0].verdict == "pass"


def _latency_buckets(fast: int, slow: int) -> Measurement:
    # TF Serving's boundaries in microseconds around 250 ms: 217435.5 (pass) and 391383.9 (fail).
    series = (
        ("100000", fast * 0.9),
        ("217435.5", float(fast)),
        ("391383.9", float(fast)),
        ("+Inf", float(fast + slow)),
    )
    return Measurement(float("nan"), fast + slow, series=series)


def test_latency_is_judged_as_the_share_slower_than_max_and_shows_p99_in_seconds() -> None:
    latency = metric(name="latency", template="tfserving-latency-p99", max=0.25)
    assert kind_of(latency) == "slow_share"
    slow = check([latency], {"latency": Window(_latency_buckets(2910, 90))}, [], stamp(10))[0]
    assert slow.verdict == "fail" and slow.judge == "sequential"
    assert "share slower than 0.25s" in slow.message
    assert slow.candidate is not None and slow.candidate > 0.39
    fast = check([latency], {"latency": Window(_latency_buckets(3000, 0))}, [], stamp(10))[0]
    assert fast.verdict == "pass"
    assert fast.pool is not None and {p.part for p in fast.pool.parts} == {"le=217435.5", "le=391383.9"}


def test_a_quantile_from_buckets_is_interpolated_like_histogram_quantile() -> None:
    assert quantile_from_buckets({"1": 50.0, "2": 100.0, "+Inf": 100.0}, 0.75) == pytest.approx(1.5)
    assert quantile_from_buckets({"1": 0.0, "+Inf": 0.0}, 0.99) is None


def test_a_mean_error_is_pooled_and_judged_on_its_pooled_value() -> None:
    mae = metric(name="mae", template="mae", max=0.5, minRequests=0)
    assert kind_of(mae) == "mean"
    # Sums of errors exceed the counts: a mean is never capped like a proportion.
    first = check([mae], {"mae": Window(Measurement(0.9, 100, 90.0, 100.0))}, [], stamp(10))[0]
    assert first.verdict == "fail" and first.judge == "threshold"
    second = check([mae], {"mae": Window(Measurement(0.1, 900, 90.0, 900.0))}, [first], stamp(20))[0]
    assert second.verdict == "pass" and second.candidate == pytest.approx(0.18)


def test_a_plain_query_is_a_threshold_on_its_window() -> None:
    plain = metric(name="q", query="vector(1)", max=0.5)
    assert kind_of(plain) == "threshold"
    result = check([plain], {"q": Window(Measurement(0.9))}, [], stamp(10))[0]
    assert result.verdict == "fail" and result.judge == "threshold" and result.pool is None


def test_alpha_is_one_minus_confidence_split_over_the_sequential_bounds_of_the_stage() -> None:
    metrics = [
        ACCURACY,  # min and maxDrop: 2
        metric(name="latency", template="tfserving-latency-p99", max=0.25),  # 1
        metric(name="q", query="vector(1)", max=1),  # a threshold: 0
    ]
    assert alpha_for(metrics, 0.97) == pytest.approx(0.01)


@pytest.mark.parametrize("confidence", [0.5, 1.0, 0.2, 1.5])
def test_a_confidence_outside_half_to_one_is_refused_naming_the_field(confidence: float) -> None:
    with pytest.raises(ValidationError, match="confidence"):
        AnalysisSpec.model_validate({"confidence": confidence})


def test_confidence_defaults_to_99_percent() -> None:
    assert AnalysisSpec().confidence == 0.99


def test_a_counter_that_went_down_drops_the_window_for_both_versions_and_moves_on() -> None:
    first = check([ACCURACY], {"accuracy": Window(ratio(950, 1000), ratio(960, 1000))}, [], stamp(10))
    reset = Measurement(float("nan"), 0, -5.0, -100.0, proportion=True)
    after = check([ACCURACY], {"accuracy": Window(reset, ratio(96, 100))}, first, stamp(20))[0]
    assert after.pool is not None and after.pool.dropped == 1 and after.pool.counted_until == stamp(20)
    assert after.pool.parts[0].candidate.denominator == 1000 and after.pool.parts[0].stable is not None
    assert after.pool.parts[0].stable.denominator == 1000


def test_a_stable_version_whose_share_changes_is_compared_on_its_own_pooled_counts() -> None:
    # A canary at 10% then 50% within one stage's pool: each version's rate is its own count over its own requests.
    results = check([ACCURACY], {"accuracy": Window(ratio(95, 100), ratio(855, 900))}, [], stamp(10))
    results = check([ACCURACY], {"accuracy": Window(ratio(475, 500), ratio(475, 500))}, results, stamp(20))
    result = results[0]
    assert result.candidate == pytest.approx(0.95) and result.baseline == pytest.approx(0.95)
    assert result.verdict != "fail"
