"""RouteReady: a route the router cannot use is a condition and one event, and the old RouteSupported is dropped."""

from __future__ import annotations

from modelrelease.api.status import Condition, ManagedRouteStatus, ModelReleaseStatus
from modelrelease.reconcile import _route_news, _with_operator_conditions
from modelrelease.routing.base import RouteState

MANAGED = ManagedRouteStatus(router="gatewayApi", name="digits")
MISSING = RouteState(weight=0, problem="HTTPRoute ml/digits does not exist", reason="RouteMissing")


def _types(status: ModelReleaseStatus) -> dict[str, str]:
    return {c.type: c.status for c in status.conditions}


def test_missing_route_sets_route_ready_false_with_the_routers_reason() -> None:
    status = _with_operator_conditions(ModelReleaseStatus(), MISSING, MANAGED, "t", 1)

    ready = next(c for c in status.conditions if c.type == "RouteReady")
    assert (ready.status, ready.reason, ready.message) == ("False", "RouteMissing", MISSING.problem)
    assert status.managed_route == MANAGED


def test_event_is_news_only_when_the_problem_is_new_or_changed() -> None:
    before = ModelReleaseStatus()
    after = _with_operator_conditions(before, MISSING, MANAGED, "t", 1)

    assert _route_news(before, after) == MISSING.problem
    again = _with_operator_conditions(after, MISSING, MANAGED, "t2", 1)
    assert _route_news(after, again) == ""
    fixed = _with_operator_conditions(again, RouteState(weight=0, reached=True), MANAGED, "t3", 1)
    assert _types(fixed)["RouteReady"] == "True" and _route_news(again, fixed) == ""


def test_replicas_router_has_no_route_condition_and_the_degrade_condition_is_gone() -> None:
    old = ModelReleaseStatus(conditions=[Condition(type="RouteSupported", status="False")])

    status = _with_operator_conditions(old, RouteState(weight=0, reached=True), None, "t", 1)

    assert "RouteSupported" not in _types(status) and "RouteReady" not in _types(status)
    assert status.managed_route is None
