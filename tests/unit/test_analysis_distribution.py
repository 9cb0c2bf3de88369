"""Prediction drift (total variation, label-free) and AUC (Mann-Whitney on buckets), as the operator judges them."""

from __future__ import annotations

import numpy as np
import pytest

from modelrelease.analysis import Measurement, Window, judge_check
from modelrelease.analysis.distribution import auc_from_buckets, total_variation
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricResult

SHARES = np.array([0.1] * 10)


def classes(counts: np.ndarray) -> dict[str, float]:
    return {str(k): float(c) for k, c in enumerate(counts)}


def test_the_same_class_mix_on_many_answers_passes_a_tenth_of_total_variation() -> None:
    rng = np.random.default_rng(1)
    candidate, stable = rng.multinomial(20_000, SHARES), rng.multinomial(20_000, SHARES)
    result = total_variation("drift", classes(candidate), classes(stable), 0.1, 0.01)
    assert result.verdict == "pass"
    assert result.bound.upper is not None and result.bound.upper <= 0.1


def test_a_shift_of_a_fifth_of_the_answers_to_one_class_fails_with_its_size() -> None:
    rng = np.random.default_rng(2)
    shifted = SHARES * 0.8
    shifted[3] += 0.2
    candidate, stable = rng.multinomial(5_000, shifted), rng.multinomial(5_000, SHARES)
    result = total_variation("drift", classes(candidate), classes(stable), 0.1, 0.01)
    assert result.verdict == "fail"
    assert result.bound.estimate == pytest.approx(0.18, abs=0.02)
    assert result.bound.lower is not None and result.bound.lower > 0.1
    assert "total variation" in result.bound.reason


def test_a_harmless_shift_on_huge_traffic_does_not_fail() -> None:
    shifted = SHARES.copy()
    shifted[0], shifted[1] = 0.11, 0.09  # total variation 0.01
    result = total_variation("drift", classes(shifted * 1e7), classes(SHARES * 1e7), 0.05, 0.01)
    assert result.verdict == "pass"


def test_too_few_answers_are_inconclusive() -> None:
    result = total_variation("drift", {"0": 9.0, "1": 6.0}, {"0": 1.0, "1": 14.0}, 0.1, 0.01)
    assert result.verdict == "inconclusive" and "too few answers" in result.bound.reason


def test_drift_of_a_good_candidate_is_rarely_failed_however_often_it_is_looked_at() -> None:
    """200 stages of 60 looks at 50 answers a look per version, same class mix: fails at most about alpha."""
    rng = np.random.default_rng(7)
    failed = 0
    for _ in range(200):
        candidate, stable = np.zeros(10), np.zeros(10)
        for _ in range(60):
            candidate += rng.multinomial(50, SHARES)
            stable += rng.multinomial(50, SHARES)
            if total_variation("d", classes(candidate), classes(stable), 0.05, 0.01).verdict == "fail":
                failed += 1
                break
    assert failed <= 4  # 2% of 200 at alpha 1%


def test_auc_from_buckets_counts_wins_and_half_the_ties() -> None:
    separated = auc_from_buckets({0.5: 0.0, 1.0: 10.0}, {0.5: 10.0, 1.0: 10.0})
    assert separated is not None and separated.value == pytest.approx(1.0)
    tied = auc_from_buckets({0.5: 5.0, 1.0: 10.0}, {0.5: 5.0, 1.0: 10.0})
    assert tied is not None and tied.value == pytest.approx(0.5)
    assert auc_from_buckets({1.0: 0.0}, {1.0: 4.0}) is None


def _scores(positive: tuple[float, ...], negative: tuple[float, ...]) -> Measurement:
    """Cumulative buckets of the positive class's score for true class "7" (positives) and "1" (negatives)."""
    series: list[tuple[str, float]] = []
    for actual, counts in (("7", positive), ("1", negative)):
        cumulative = np.cumsum(counts)
        for le, total in zip(("0.5", "1", "+Inf"), (*cumulative, cumulative[-1]), strict=True):
            series.append((f"{actual}|{le}", float(total)))
    return Measurement(float("nan"), None, series=tuple(series))


def test_auc_drop_beyond_max_drop_fails_and_an_equal_auc_passes_a_wide_margin() -> None:
    auc = MetricSpec.model_validate(
        {"name": "auc", "template": "auc", "positiveClass": "7", "compareToBaseline": {"maxDrop": 0.05}}
    )
    good, bad = _scores((100.0, 900.0), (900.0, 100.0)), _scores((500.0, 500.0), (500.0, 500.0))
    [worse] = judge_check([auc], 0.99, {"auc": Window(bad, good)}, [], None)
    assert worse.verdict == "fail" and worse.candidate == pytest.approx(0.5) and worse.baseline == pytest.approx(0.9)
    previous: list[MetricResult] = []
    for second in range(10, 60, 10):
        previous = judge_check([auc], 0.99, {"auc": Window(good, good)}, previous, f"2026-01-01T00:00:{second}Z")
    assert previous[0].verdict == "pass", previous[0].message


def test_prediction_drift_needs_no_labels_and_compares_with_the_stable_version() -> None:
    drift = MetricSpec.model_validate({"name": "drift", "template": "prediction-drift", "max": 0.1})
    same = Measurement(float("nan"), None, series=tuple((str(k), 2000.0) for k in range(10)))
    moved = Measurement(float("nan"), None, series=tuple((str(k), 4000.0 if k == 0 else 1000.0) for k in range(10)))
    [ok] = judge_check([drift], 0.99, {"drift": Window(same, same)}, [], None)
    [bad] = judge_check([drift], 0.99, {"drift": Window(moved, same)}, [], None)
    assert (ok.verdict, bad.verdict) == ("pass", "fail"), (ok.message, bad.message)
    assert bad.judge == "sequential" and bad.bounds[0].compared == "total variation"
