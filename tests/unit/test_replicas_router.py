"""The replicas router's split: kube-proxy's even spread over ready pods, within 5 points of each weight."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrelease.routing.base import ReleaseTarget, RouteRequest
from modelrelease.routing.replicas import (
    TOLERANCE,
    achieved_weight,
    candidate_replicas,
    main_service_version,
    plan_route,
    split,
)


def test_zero_weight_means_no_candidate_pods() -> None:
    assert split(3, 0) == (3, 0)


def test_half_weight_matches_stable_capacity() -> None:
    assert split(3, 50) == (3, 3)
    assert achieved_weight(3, 3) == 50


def test_minimal_example_canary_10_scales_stable_up_instead_of_sending_half_the_users() -> None:
    stable, candidate = split(1, 10)

    assert (stable, candidate) == (6, 1)
    assert achieved_weight(stable, candidate) == 14


def test_small_weight_on_three_replicas_scales_stable_up_to_stay_within_five_points() -> None:
    assert split(3, 5) == (9, 1)
    assert achieved_weight(9, 1) == 10


def test_weight_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        candidate_replicas(3, 101)


@given(stable=st.integers(1, 50), weight=st.integers(1, 99))
def test_every_weight_is_reached_within_tolerance_never_below_the_specs_stable_capacity(
    stable: int, weight: int
) -> None:
    stable_pods, candidate = split(stable, weight)

    assert stable_pods >= stable and candidate >= 1
    assert abs(100 * candidate / (stable_pods + candidate) - weight) <= TOLERANCE


@given(stable=st.integers(1, 20), weight=st.integers(1, 99))
def test_split_uses_the_fewest_pods_that_stay_within_tolerance(stable: int, weight: int) -> None:
    stable_pods, candidate = split(stable, weight)
    fewer = stable_pods + candidate - 1
    for c in range(1, fewer - stable + 1):
        assert abs(100 * c / fewer - weight) > TOLERANCE


def _target(candidate: int | None = 2, stable_replicas: int = 3) -> ReleaseTarget:
    return ReleaseTarget(
        namespace="ml", release="digits", stable_version=1, candidate_version=candidate, stable_replicas=stable_replicas
    )


def test_candidate_without_traffic_is_kept_out_of_the_user_service() -> None:
    plan = plan_route(_target(), RouteRequest(weight=0))

    assert plan.candidate_replicas is None and plan.stable_replicas is None
    assert main_service_version(_target(), plan) == 1


def test_weighted_stage_puts_every_version_behind_the_user_service() -> None:
    plan = plan_route(_target(), RouteRequest(weight=25))

    assert (plan.candidate_replicas, plan.stable_replicas, plan.weight) == (1, 3, 25)
    assert main_service_version(_target(), plan) is None


def test_plan_for_a_small_weight_asks_for_more_stable_pods() -> None:
    plan = plan_route(_target(stable_replicas=1), RouteRequest(weight=10))

    assert (plan.stable_replicas, plan.candidate_replicas, plan.weight) == (6, 1, 14)


def test_without_a_candidate_only_the_stable_version_serves_users() -> None:
    """Narrow before any candidate exists: a new candidate's Ready pods are never the user Service's endpoints."""
    plan = plan_route(_target(candidate=None), RouteRequest())

    assert main_service_version(_target(candidate=None), plan) == 1


def test_during_a_handover_the_previous_stable_keeps_serving_beside_the_new_one() -> None:
    target = ReleaseTarget(
        namespace="ml",
        release="digits",
        stable_version=2,
        candidate_version=None,
        stable_replicas=3,
        retiring_version=1,
    )

    assert main_service_version(target, plan_route(target, RouteRequest())) is None


@given(
    stable=st.integers(1, 9),
    candidate=st.none() | st.integers(10, 19),
    retiring=st.none() | st.integers(20, 29),
    weight=st.integers(0, 100),
)
def test_a_version_with_no_users_allowed_is_never_selected(
    stable: int, candidate: int | None, retiring: int | None, weight: int
) -> None:
    """The ``<name>`` selector admits the candidate only in a weighted stage, another version only in a handover."""
    target = ReleaseTarget(
        namespace="ml",
        release="digits",
        stable_version=stable,
        candidate_version=candidate,
        stable_replicas=1,
        retiring_version=retiring,
    )
    selected = main_service_version(target, plan_route(target, RouteRequest(weight=weight)))

    if selected is None:
        assert (candidate is not None and weight > 0) or retiring is not None
    else:
        assert selected == stable


def test_stable_deployment_is_sized_by_the_plan_while_the_stage_needs_more_pods() -> None:
    from modelrelease.apply import RouteIntent, replicas_for
    from modelrelease.engine.actions import EnsureDeployment, FixedReplicas

    target = _target(stable_replicas=1)
    intent = RouteIntent(target, plan_route(target, RouteRequest(weight=10)))

    assert replicas_for(EnsureDeployment(version=1, role="stable", replicas=FixedReplicas(1)), intent) == 6
    retiring = EnsureDeployment(version=0, role="stable", replicas=FixedReplicas(1))
    assert replicas_for(retiring, intent) == 1
