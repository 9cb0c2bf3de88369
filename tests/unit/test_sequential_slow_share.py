"""p99 <= L as "at most 1% slower than L": the bucket boundaries chosen and the verdicts they allow."""

from __future__ import annotations

import pytest

from modelrelease.analysis.sequential import Counts
from modelrelease.analysis.slow_share import judge_slow_share, slow_increase, slow_share_bound

# TF Serving's latency histogram is in microseconds.
BUCKETS = ["10000", "50000", "100000", "250000", "500000", "1e+06", "+Inf"]
ALPHA = 0.0025


def test_a_limit_on_a_bucket_boundary_uses_that_boundary_for_both_verdicts() -> None:
    bound = slow_share_bound(0.99, 250_000, BUCKETS)
    assert bound.max_share == pytest.approx(0.01)
    assert bound.fail_le == bound.pass_le == "250000"


def test_a_limit_between_boundaries_fails_on_the_one_above_and_passes_on_the_one_below() -> None:
    bound = slow_share_bound(0.99, 300_000, BUCKETS)
    assert (bound.fail_le, bound.pass_le) == ("500000", "250000")


def test_a_limit_beyond_every_finite_boundary_can_only_pass() -> None:
    bound = slow_share_bound(0.99, 5_000_000, BUCKETS)
    assert (bound.fail_le, bound.pass_le) == (None, "1e+06")


@pytest.mark.parametrize(
    ("quantile", "limit", "labels", "field"),
    [
        (1.0, 250_000, BUCKETS, "quantile"),
        (0.99, 0, BUCKETS, "max"),
        (0.99, 1, ["+Inf"], "no finite bucket"),
        (0.99, 1, ["x"], "le label"),
    ],
)
def test_unusable_input_is_refused_naming_what_is_wrong(
    quantile: float, limit: float, labels: list[str], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        slow_share_bound(quantile, limit, labels)


def test_slow_requests_are_the_count_minus_the_bucket_and_never_negative() -> None:
    assert slow_increase(1000, 985) == slow_increase(1000.0, 985.0)
    assert slow_increase(1000, 985).numerator == 15
    assert slow_increase(1000, 1000.3).numerator == 0


def test_three_percent_slow_on_thousands_of_requests_fails_p99() -> None:
    bound = slow_share_bound(0.99, 250_000, BUCKETS)
    slow = Counts(150, 5000)
    result = judge_slow_share("latency-p99", bound, slow, slow, ALPHA)
    assert result.verdict == "fail"
    assert "above max 0.01" in result.reason


def test_a_pass_on_the_boundary_above_the_limit_does_not_show_p99_within_it() -> None:
    bound = slow_share_bound(0.99, 300_000, BUCKETS)
    few_above_500ms = Counts(5, 20_000)
    many_above_250ms = Counts(190, 20_000)
    result = judge_slow_share("latency-p99", bound, few_above_500ms, many_above_250ms, ALPHA)
    assert result.verdict == "inconclusive"
    assert "does not show p99 <= 300000" in result.reason


def test_few_slow_requests_below_the_limit_pass() -> None:
    bound = slow_share_bound(0.99, 300_000, BUCKETS)
    result = judge_slow_share("latency-p99", bound, Counts(5, 20_000), Counts(20, 20_000), ALPHA)
    assert result.verdict == "pass"
