"""The pure rules of leader election: expiry measured on this replica's clock, validity, retry pace.

The same rules run against the real API server in
tests/integration/test_leader_election.py; these pin the arithmetic.
"""

from __future__ import annotations

import pytest

from modelrelease.leader import LeaseConfig, LeaseObservation, next_attempt_in


def test_time_since_a_change_counts_from_when_this_replica_saw_it() -> None:
    seen = LeaseObservation()
    seen.see(("1", "other", "2020-01-01T00:00:00Z"), now=100.0)
    assert seen.unchanged_for(now=109.0) == 9.0
    seen.see(("1", "other", "2020-01-01T00:00:00Z"), now=109.0)  # the same record again is no change
    assert seen.unchanged_for(now=111.0) == 11.0
    seen.see(("2", "other", "2020-01-01T00:00:05Z"), now=111.0)  # renewed, however old its renewTime
    assert seen.unchanged_for(now=112.0) == 1.0


def test_a_replica_that_has_seen_nothing_yet_never_judges_a_lease_expired() -> None:
    assert LeaseObservation().unchanged_for(now=1e9) < 0


def test_a_leader_acts_for_the_duration_less_one_renew_period() -> None:
    assert LeaseConfig("ns", "lease", "me", lease_duration=15, renew_period=5).validity == 10


@pytest.mark.parametrize("renew_period", [0.0, 15.0, 20.0])
def test_a_renew_period_that_leaves_no_validity_is_refused(renew_period: float) -> None:
    with pytest.raises(ValueError, match="renew_period"):
        LeaseConfig("ns", "lease", "me", lease_duration=15, renew_period=renew_period)


def test_failed_attempts_back_off_up_to_the_renew_period() -> None:
    config = LeaseConfig("ns", "lease", "me", lease_duration=15, renew_period=5)
    pauses = [next_attempt_in(config, leader=True, failures=failures) for failures in range(1, 7)]
    assert pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_leader_renews_each_renew_period_and_a_follower_looks_more_often() -> None:
    config = LeaseConfig("ns", "lease", "me", lease_duration=15, renew_period=5)
    assert next_attempt_in(config, leader=True, failures=0) == 5.0
    assert next_attempt_in(config, leader=False, failures=0) == 2.0
