"""The replicas router's split: kube-proxy's even spread over ready pods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrelease.routing.base import ReleaseTarget, RouteRequest
from modelrelease.routing.replicas import achieved_weight, candidate_replicas, main_service_version, plan_route


def test_zero_weight_means_no_candidate_pods() -> None:
    assert candidate_replicas(3, 0) == 0


def test_half_weight_matches_stable_capacity() -> None:
    assert candidate_replicas(3, 50) == 3
    assert achieved_weight(3, 3) == 50


def test_small_weight_still_gets_one_pod_and_reports_the_real_share() -> None:
    assert candidate_replicas(3, 5) == 1
    assert achieved_weight(3, 1) == 25


def test_weight_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        candidate_replicas(3, 101)


@given(stable=st.integers(1, 50), weight=st.integers(1, 99))
def test_candidate_replicas_are_bounded_and_never_zero_for_positive_weight(stable: int, weight: int) -> None:
    replicas = candidate_replicas(stable, weight)
    assert 1 <= replicas <= 4 * stable


@given(stable=st.integers(1, 20), weight=st.integers(1, 80))
def test_achieved_weight_is_the_nearest_possible_to_the_request(stable: int, weight: int) -> None:
    replicas = candidate_replicas(stable, weight)
    achieved = achieved_weight(stable, replicas)
    for other in range(1, 4 * stable + 1):
        assert abs(achieved - weight) <= abs(achieved_weight(stable, other) - weight) + 1


def _target(candidate: int | None = 2) -> ReleaseTarget:
    return ReleaseTarget(
        namespace="ml", release="digits", stable_version=1, candidate_version=candidate, stable_replicas=3
    )


def test_candidate_without_traffic_is_kept_out_of_the_user_service() -> None:
    plan = plan_route(_target(), RouteRequest(weight=0))

    assert plan.candidate_replicas is None
    assert main_service_version(_target(), plan) == 1


def test_weighted_stage_puts_every_version_behind_the_user_service() -> None:
    plan = plan_route(_target(), RouteRequest(weight=25))

    assert (plan.candidate_replicas, plan.weight) == (1, 25)
    assert main_service_version(_target(), plan) is None
    assert plan.limitation == ""


def test_shadow_stage_runs_as_the_smallest_canary_and_says_so() -> None:
    plan = plan_route(_target(), RouteRequest(mirror=100))

    assert plan.candidate_replicas == 1
    assert "cannot mirror" in plan.limitation and "25%" in plan.limitation


def test_cohort_stage_splits_all_users_and_says_so() -> None:
    plan = plan_route(_target(), RouteRequest(weight=50, match=({"x-cohort": "b"},)))

    assert plan.candidate_replicas == 3
    assert "cannot match headers" in plan.limitation


def test_without_a_candidate_every_live_version_serves_users() -> None:
    plan = plan_route(_target(candidate=None), RouteRequest())

    assert main_service_version(_target(candidate=None), plan) is None
