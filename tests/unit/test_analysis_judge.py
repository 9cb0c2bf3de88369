"""Every path to pass, fail and inconclusive; never a pass without enough data."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelrelease.analysis import DEFAULT_MIN_SAMPLES, Measurement, Unmeasured, judge
from modelrelease.api.spec import MetricSpec


def metric(**fields: Any) -> MetricSpec:
    return MetricSpec.model_validate({"name": "accuracy", "template": "accuracy", **fields})


def proportion(successes: float, trials: float) -> Measurement:
    return Measurement(
        value=successes / trials, samples=round(trials), numerator=successes, denominator=trials, proportion=True
    )


def plain(value: float, samples: int | None = 100) -> Measurement:
    return Measurement(value=value, samples=samples)


# -- no usable candidate value: inconclusive --------------------------------------------------


@pytest.mark.parametrize(
    "reason", ["no data: the numerator query matched no series", "Prometheus unreachable at http://p:9090"]
)
def test_no_candidate_value_is_inconclusive_with_the_reason(reason: str) -> None:
    result = judge(metric(min=0.9), Unmeasured(reason), proportion(95, 100))
    assert result.verdict == "inconclusive"
    assert result.message == reason
    assert result.candidate is None
    assert result.baseline == 0.95


def test_nan_is_inconclusive() -> None:
    result = judge(metric(max=0.25, template="tfserving-latency-p99"), plain(math.nan), None)
    assert result.verdict == "inconclusive"
    assert "nan" in result.message


def test_fewer_requests_than_min_requests_is_inconclusive_even_for_a_terrible_value() -> None:
    result = judge(metric(min=0.9, min_requests=50), proportion(0, 49), None)
    assert result.verdict == "inconclusive"
    assert "49 requests in the window, 50 needed" in result.message
    assert result.samples == 49


def test_without_min_requests_a_counted_metric_needs_the_default_sample() -> None:
    thin = judge(metric(min=0.9), proportion(DEFAULT_MIN_SAMPLES - 1, DEFAULT_MIN_SAMPLES - 1), None)
    enough = judge(metric(min=0.9), proportion(DEFAULT_MIN_SAMPLES, DEFAULT_MIN_SAMPLES), None)
    assert thin.verdict == "inconclusive"
    assert enough.verdict == "pass"


def test_min_requests_zero_allows_judging_any_sample() -> None:
    assert judge(metric(min=0.9, min_requests=0), proportion(3, 3), None).verdict == "pass"


def test_min_requests_on_a_plain_query_cannot_be_honoured_and_says_so() -> None:
    query_metric = MetricSpec(name="q", query="up", min=1, min_requests=10)
    result = judge(query_metric, plain(1.0, samples=None), None)
    assert result.verdict == "inconclusive"
    assert "use a ratio metric" in result.message


def test_a_plain_query_without_min_requests_is_judged_on_its_value() -> None:
    assert judge(MetricSpec(name="q", query="up", min=1), plain(1.0, samples=None), None).verdict == "pass"


# -- thresholds ---------------------------------------------------------------------------------


def test_a_value_within_min_and_max_passes() -> None:
    result = judge(metric(min=0.9, max=0.99), proportion(95, 100), None)
    assert result.verdict == "pass"
    assert result.candidate == pytest.approx(0.95)


def test_a_proportion_clearly_below_min_fails() -> None:
    result = judge(metric(min=0.9), proportion(60, 100), None)
    assert result.verdict == "fail"
    assert "0.6 < min 0.9" in result.message


def test_a_proportion_just_below_min_on_a_small_sample_is_noise_not_a_failure() -> None:
    result = judge(metric(min=0.95), proportion(93, 100), None)
    assert result.verdict == "inconclusive"
    assert "within noise" in result.message


def test_the_same_shortfall_on_a_large_sample_fails() -> None:
    assert judge(metric(min=0.95), proportion(9300, 10000), None).verdict == "fail"


def test_an_error_rate_clearly_above_max_fails_and_a_zero_error_rate_passes() -> None:
    error_rate = metric(template="tfserving-error-rate", max=0.01)
    assert judge(error_rate, proportion(10, 100), None).verdict == "fail"
    assert judge(error_rate, proportion(0, 100), None).verdict == "pass"


def test_an_error_rate_slightly_above_max_on_few_requests_is_inconclusive() -> None:
    result = judge(metric(template="tfserving-error-rate", max=0.01), proportion(1, 50), None)
    assert result.verdict == "inconclusive"
    assert "lower bound" in result.message


def test_a_non_proportion_outside_its_bound_fails_at_once() -> None:
    latency = MetricSpec(name="latency", template="tfserving-latency-p99", max=0.25)
    assert judge(latency, plain(0.26), None).verdict == "fail"
    assert judge(latency, plain(0.24), None).verdict == "pass"
    assert judge(MetricSpec(name="q", query="x", min=2), plain(1.5, None), None).verdict == "fail"


def test_counts_that_are_not_a_proportion_are_judged_on_the_value() -> None:
    odd = Measurement(value=1.5, samples=100, numerator=150, denominator=100, proportion=True)
    assert not odd.binomial
    assert judge(metric(max=1.0), odd, None).verdict == "fail"


# -- against the stable version -------------------------------------------------------------------


def compared(**bounds: float) -> MetricSpec:
    return metric(compare_to_baseline=bounds)


def test_a_candidate_as_good_as_stable_passes_the_comparison() -> None:
    result = judge(compared(maxDrop=0.02), proportion(940, 1000), proportion(950, 1000))
    assert result.verdict == "pass"
    assert result.baseline == pytest.approx(0.95)


def test_a_candidate_clearly_worse_than_stable_fails_naming_both_values() -> None:
    result = judge(compared(maxDrop=0.02), proportion(600, 1000), proportion(950, 1000))
    assert result.verdict == "fail"
    assert "candidate 0.6 vs stable 0.95" in result.message
    assert (result.candidate, result.baseline) == (pytest.approx(0.6), pytest.approx(0.95))


def test_a_drop_beyond_max_drop_within_noise_is_inconclusive() -> None:
    result = judge(compared(maxDrop=0.02), proportion(90, 100), proportion(95, 100))
    assert result.verdict == "inconclusive"
    assert "within noise" in result.message


def test_max_increase_fails_a_clearly_higher_error_rate_and_passes_an_equal_one() -> None:
    errors = metric(template="tfserving-error-rate", compare_to_baseline={"maxIncrease": 0.01})
    assert judge(errors, proportion(100, 1000), proportion(5, 1000)).verdict == "fail"
    assert judge(errors, proportion(5, 1000), proportion(5, 1000)).verdict == "pass"


def test_max_increase_for_latency_compares_absolute_seconds() -> None:
    latency = MetricSpec(name="latency", template="tfserving-latency-p99", compare_to_baseline={"maxIncrease": 0.05})
    assert judge(latency, plain(0.20), plain(0.10)).verdict == "fail"
    assert judge(latency, plain(0.14), plain(0.10)).verdict == "pass"


def test_one_failing_bound_fails_the_metric_even_when_others_pass() -> None:
    result = judge(metric(min=0.5, compare_to_baseline={"maxDrop": 0.02}), proportion(600, 1000), proportion(950, 1000))
    assert result.verdict == "fail"


@pytest.mark.parametrize(
    ("baseline", "note"),
    [
        (None, "no stable version"),
        (Unmeasured("no data: the denominator query matched no series"), "stable version: no data"),
        (proportion(5, 5), "stable version has 5 requests"),
    ],
)
def test_without_a_usable_stable_value_thresholds_decide_and_the_message_says_so(
    baseline: Measurement | Unmeasured | None, note: str
) -> None:
    result = judge(metric(min=0.9, compare_to_baseline={"maxDrop": 0.02}), proportion(95, 100), baseline)
    assert result.verdict == "pass"
    assert note in result.message


def test_a_comparison_only_metric_without_a_usable_stable_value_is_inconclusive_not_passed() -> None:
    result = judge(compared(maxDrop=0.02), proportion(95, 100), Unmeasured("no data"))
    assert result.verdict == "inconclusive"
    assert "nothing could be judged" in result.message
