"""Pooled counts: every interval counted once, whatever restarts, resets and gaps the operator lives through."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelrelease.analysis.pooled import Increase, PooledCounts, PooledPair

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(check: int) -> datetime:
    return T0 + timedelta(seconds=30 * check)


def test_increases_add_up_over_the_stage() -> None:
    pool = PooledCounts().add(Increase(3, 100), at(1)).add(Increase(5, 120), at(2))
    assert (pool.numerator, pool.denominator, pool.intervals) == (8, 220, 2)
    assert pool.counted_until == at(2)
    assert pool.counts.value == 8 / 220


def test_a_check_replayed_after_a_restart_is_not_counted_twice() -> None:
    pool = PooledCounts().add(Increase(3, 100), at(1))
    replayed = pool.add(Increase(3, 100), at(1)).add(Increase(9, 100), at(0))
    assert replayed == pool


def test_a_negative_increase_is_a_reset_and_is_dropped_not_subtracted() -> None:
    pool = PooledCounts().add(Increase(3, 100), at(1)).add(Increase(-40, -900), at(2)).add(Increase(1, 50), at(3))
    assert (pool.numerator, pool.denominator) == (4, 150)
    assert pool.dropped == 1
    assert pool.counted_until == at(3)


def test_a_gap_adds_nothing_and_keeps_the_window_start_so_the_next_check_covers_it() -> None:
    pool = PooledCounts().add(Increase(3, 100), at(1))
    for missing in (None, Increase(math.nan, 100), Increase(2, math.inf)):
        gapped = pool.add(missing, at(2))
        assert (gapped.numerator, gapped.denominator, gapped.gaps) == (3, 100, 1)
        assert gapped.counted_until == at(1)


def test_more_events_than_trials_in_an_interval_are_capped_at_the_trials() -> None:
    pool = PooledCounts().add(Increase(100.4, 100.0), at(1))
    assert pool.numerator == pool.denominator == 100.0


def test_an_interval_missing_for_either_version_is_left_out_for_both() -> None:
    pair = PooledPair.start(with_stable=True).add(Increase(1, 10), Increase(2, 200), at(1))
    pair = pair.add(Increase(5, 10), None, at(2))
    assert pair.stable is not None
    assert (pair.candidate.numerator, pair.candidate.denominator) == (1, 10)
    assert (pair.stable.numerator, pair.stable.denominator) == (2, 200)
    assert pair.candidate.gaps == pair.stable.gaps == 1
    pair = pair.add(Increase(1, 10), Increase(-5, -100), at(3))
    assert pair.stable is not None
    assert pair.candidate.dropped == pair.stable.dropped == 1
    assert pair.candidate.counted_until == pair.stable.counted_until == at(3)


def test_without_a_stable_version_the_candidate_is_pooled_alone() -> None:
    pair = PooledPair.start(with_stable=False).add(Increase(1, 10), None, at(1))
    assert pair.stable is None
    assert pair.candidate.denominator == 10


increases = st.one_of(
    st.none(),
    st.builds(
        Increase, st.one_of(st.floats(-50, 500), st.just(math.nan)), st.one_of(st.floats(-50, 500), st.just(math.nan))
    ),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(increases, st.integers(0, 40)), max_size=30))
def test_pooled_counts_never_go_down_never_exceed_their_trials_and_each_window_counts_once(
    steps: list[tuple[Increase | None, int]],
) -> None:
    pool = PooledCounts()
    for increase, check in steps:
        before = pool
        pool = pool.add(increase, at(check))
        assert pool.numerator >= before.numerator and pool.denominator >= before.denominator
        assert 0 <= pool.numerator <= pool.denominator
        replayed = pool.add(increase, at(check))  # the same check again (a gap is a gap again: only counted)
        assert (replayed.counts, replayed.counted_until) == (pool.counts, pool.counted_until)
