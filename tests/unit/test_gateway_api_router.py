"""The gatewayApi router's edits to a user's HTTPRoute: only its own part changes, and it can be put back."""

from __future__ import annotations

import copy
import re
from typing import Any

from modelrelease.routing.base import RouteRequest
from modelrelease.routing.gateway_api import (
    desired_rules,
    header_matches,
    observed_split,
    parents_caught_up,
    route_problem,
)

PREDICT = {"path": {"type": "PathPrefix", "value": "/tensorflow.serving.PredictionService/"}}
USER_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x-a", "value": "1"}]}}],
    "backendRefs": [{"name": "admin", "port": 80}],
}
RELEASE_RULE = {
    "matches": [PREDICT],
    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-b", "value": "2"}]}}],
    "backendRefs": [{"name": "digits-stable", "port": 8500}],
}


def _rules() -> list[dict[str, Any]]:
    return [copy.deepcopy(USER_RULE), copy.deepcopy(RELEASE_RULE)]


def test_canary_weight_splits_the_release_rule_and_leaves_the_users_rule_alone() -> None:
    rules = desired_rules(_rules(), "digits", RouteRequest(weight=25), has_candidate=True)

    assert rules[0] == USER_RULE
    assert rules[1]["backendRefs"] == [
        {"name": "digits-stable", "port": 8500, "weight": 75},
        {"name": "digits-canary", "port": 8500, "weight": 25},
    ]
    assert rules[1]["matches"] == RELEASE_RULE["matches"] and rules[1]["filters"] == RELEASE_RULE["filters"]
    assert observed_split(rules, "digits") == (25, 0, False)


def test_shadow_adds_a_request_mirror_to_the_canary_and_keeps_every_answer_on_stable() -> None:
    rules = desired_rules(_rules(), "digits", RouteRequest(mirror=50), has_candidate=True)

    release = rules[1]
    assert release["backendRefs"] == [{"name": "digits-stable", "port": 8500}]
    assert release["filters"][0] == RELEASE_RULE["filters"][0]
    assert release["filters"][1] == {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "digits-canary", "port": 8500}, "percent": 50},
    }
    assert observed_split(rules, "digits") == (0, 50, False)


def test_ab_stage_adds_a_named_cohort_rule_to_the_candidate_and_keeps_everyone_else_on_stable() -> None:
    rules = desired_rules(_rules(), "digits", RouteRequest(weight=50, match=({"x-cohort": "b"},)), has_candidate=True)

    assert [r.get("name") for r in rules] == [None, "modelrelease-digits-cohort-0", None]
    cohort = rules[1]
    assert cohort["matches"] == [{**PREDICT, "headers": [{"name": "x-cohort", "type": "Exact", "value": "b"}]}]
    assert cohort["backendRefs"] == [{"name": "digits-canary", "port": 8500}]
    assert cohort["filters"] == RELEASE_RULE["filters"]
    assert rules[2]["backendRefs"] == [{"name": "digits-stable", "port": 8500}]
    assert observed_split(rules, "digits")[2] is True


def test_cookie_cohort_is_a_regular_expression_on_the_cookie_header() -> None:
    (match,) = header_matches({"cookie": "cohort=b"})

    assert (match["name"], match["type"]) == ("Cookie", "RegularExpression")
    pattern = re.compile(match["value"])
    assert pattern.fullmatch("a=1; cohort=b; z=2") and pattern.fullmatch("cohort=b")
    assert not pattern.fullmatch("cohort=bb") and not pattern.fullmatch("xcohort=b")


def test_going_back_to_stable_restores_the_route_as_the_user_wrote_it() -> None:
    edited = desired_rules(_rules(), "digits", RouteRequest(weight=50, match=({"x-cohort": "b"},)), True)
    edited = desired_rules(edited, "digits", RouteRequest(mirror=100), True) + edited

    assert desired_rules(edited, "digits", RouteRequest(), has_candidate=False) == _rules() + _rules()


def test_rules_of_another_release_in_the_same_route_are_untouched() -> None:
    other = {"matches": [PREDICT], "backendRefs": [{"name": "mnist-stable", "port": 8500}]}
    other_cohort = {"name": "modelrelease-mnist-cohort-0", "backendRefs": [{"name": "mnist-canary", "port": 8500}]}

    rules = desired_rules([other_cohort, other, *_rules()], "digits", RouteRequest(weight=10), True)

    assert rules[:2] == [other_cohort, other]


def _route(rules: list[dict[str, Any]], parents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"generation": 3}, "spec": {"rules": rules}, "status": {"parents": parents or []}}


def _parent(status: str, generation: int = 3, message: str = "") -> dict[str, Any]:
    condition = {"type": "Accepted", "status": status, "observedGeneration": generation, "message": message}
    return {"parentRef": {"name": "gw"}, "conditions": [condition]}


def test_missing_malformed_and_unaccepted_routes_are_problems_with_a_reason() -> None:
    assert route_problem(None, "ml", "digits", "digits")[0] == "RouteMissing"
    reason, message = route_problem(_route([USER_RULE], [_parent("True")]), "ml", "digits", "digits")
    assert reason == "RouteMalformed" and "digits-stable" in message
    assert route_problem(_route(_rules()), "ml", "digits", "digits")[0] == "RouteNotAccepted"
    reason, message = route_problem(_route(_rules(), [_parent("False", message="no listener")]), "ml", "d", "digits")
    assert reason == "RouteNotAccepted" and "no listener" in message
    assert route_problem(_route(_rules(), [_parent("True")]), "ml", "digits", "digits") == ("", "")


def test_split_counts_as_reached_only_once_every_parent_accepted_the_current_generation() -> None:
    assert parents_caught_up(_route(_rules(), [_parent("True", 3)]))
    assert not parents_caught_up(_route(_rules(), [_parent("True", 2)]))
