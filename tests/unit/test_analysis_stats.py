"""The confidence bounds behave as the judges rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrelease.analysis.stats import difference_interval, wilson_interval


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_bounds_contain_the_observed_share_and_stay_in_the_unit_interval(counts: tuple[int, int]) -> None:
    successes, trials = counts
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_more_data_narrows_the_interval() -> None:
    small = wilson_interval(9, 10)
    large = wilson_interval(900, 1000)
    assert large[1] - large[0] < small[1] - small[0]


def test_zero_errors_still_leaves_an_upper_bound_above_zero() -> None:
    low, high = wilson_interval(0, 20)
    assert low == 0.0
    assert high == pytest.approx(0.119, abs=0.005)


def test_no_trials_says_nothing() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@given(st.integers(0, 500), st.integers(0, 500))
def test_the_difference_interval_is_antisymmetric(a: int, b: int) -> None:
    low, high = difference_interval(a, 500, b, 500)
    back_low, back_high = difference_interval(b, 500, a, 500)
    assert low == pytest.approx(-back_high)
    assert high == pytest.approx(-back_low)
    assert low < high


def test_a_large_real_difference_excludes_zero_and_a_tiny_one_does_not() -> None:
    assert difference_interval(600, 1000, 950, 1000)[1] < 0
    low, high = difference_interval(94, 100, 95, 100)
    assert low < 0 < high
