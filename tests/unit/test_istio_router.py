"""The istio router's edits to a user's VirtualService: weights, cohort routes first, mirror, and back."""

from __future__ import annotations

import copy
from typing import Any

from modelrelease.routing.base import RouteRequest
from modelrelease.routing.istio import desired_routes, observed_split, route_problem

HOST = "digits-stable.ml.svc.cluster.local"
USER_ROUTE = {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}], "route": [{"destination": {"host": "admin"}}]}
RELEASE_ROUTE = {
    "name": "predict",
    "match": [{"uri": {"prefix": "/tensorflow.serving.PredictionService/"}}],
    "timeout": "5s",
    "route": [{"destination": {"host": HOST, "port": {"number": 8500}}}],
}


def _routes() -> list[dict[str, Any]]:
    return [copy.deepcopy(USER_ROUTE), copy.deepcopy(RELEASE_ROUTE)]


def test_weights_go_to_stable_and_canary_hosts_in_the_same_namespace() -> None:
    routes = desired_routes(_routes(), "digits", RouteRequest(weight=10), has_candidate=True)

    assert routes[0] == USER_ROUTE
    assert routes[1]["route"] == [
        {"destination": {"host": HOST, "port": {"number": 8500}}, "weight": 90},
        {"destination": {"host": "digits-canary.ml.svc.cluster.local", "port": {"number": 8500}}, "weight": 10},
    ]
    assert routes[1]["timeout"] == "5s"
    assert observed_split(routes, "digits") == (10, 0, False)


def test_shadow_sets_mirror_and_mirror_percentage() -> None:
    routes = desired_routes(_routes(), "digits", RouteRequest(mirror=20), has_candidate=True)

    assert routes[1]["mirror"] == {"host": "digits-canary.ml.svc.cluster.local", "port": {"number": 8500}}
    assert routes[1]["mirrorPercentage"] == {"value": 20.0}
    assert observed_split(routes, "digits") == (0, 20, False)


def test_cohort_route_comes_first_with_the_stages_headers() -> None:
    request = RouteRequest(weight=50, match=({"x-cohort": "b"},))
    routes = desired_routes(_routes(), "digits", request, has_candidate=True)

    assert [r["name"] for r in routes] == ["admin", "modelrelease-digits-cohort-0", "predict"]
    assert routes[1]["match"] == [
        {"uri": {"prefix": "/tensorflow.serving.PredictionService/"}, "headers": {"x-cohort": {"exact": "b"}}}
    ]
    assert routes[1]["route"] == [
        {"destination": {"host": "digits-canary.ml.svc.cluster.local", "port": {"number": 8500}}}
    ]
    assert routes[2]["route"] == RELEASE_ROUTE["route"]


def test_back_to_stable_restores_the_virtual_service() -> None:
    edited = desired_routes(_routes(), "digits", RouteRequest(weight=50, match=({"cookie": "c=b"},)), True)
    edited = desired_routes(edited, "digits", RouteRequest(mirror=100), True)

    assert desired_routes(edited, "digits", RouteRequest(), has_candidate=False) == _routes()


def test_missing_or_ruleless_virtual_service_is_a_problem() -> None:
    assert route_problem(None, "ml", "digits", "digits")[0] == "RouteMissing"
    assert route_problem({"spec": {"http": [USER_ROUTE]}}, "ml", "digits", "digits")[0] == "RouteMalformed"
    assert route_problem({"spec": {"http": _routes()}}, "ml", "digits", "digits") == ("", "")
