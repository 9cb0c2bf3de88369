"""The gatewayApi and istio routers on devstack: the user's route, edited by the operator, carries the traffic.

gatewayApi: a real gateway (Traefik) serves the HTTPRoute.  One release
walks every stage kind while labelled traffic goes through Traefik, and each
stage is held (``spec.holdAt``) long enough to measure it: the canary split
over 2,000 requests, the A/B cohort, the shadow stage (only stable answers
users, the candidate gets the mirrored copies and a bad model is rolled back
from them).  On the same route: a missing route, an edit by someone else put
back, a rollback restoring 100% stable, and deletion restoring the route
with the user's own rule byte-identical.

istio: there is no Envoy here, so the traffic generator follows the
VirtualService itself; the same stages and the same guarantees, on one
release.  One scenario per router keeps the added test time to a few minutes.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from rollout_support import ACCURACY_RATIO, OperatorProcess, Releases

from devstack import scenario
from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

ROUTE = "digits"
PREDICT_PATH = {"type": "PathPrefix", "value": "/tensorflow.serving.PredictionService/"}
USER_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x-team", "value": "ml"}]}}
    ],
    "backendRefs": [{"name": "digits", "port": 8501}],
}
RELEASE_RULE = {"matches": [{"path": PREDICT_PATH}], "backendRefs": [{"name": "digits-stable", "port": 8500}]}
COHORT = {"x-cohort": "b"}
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.3}},
    {"name": "shadow", "mirror": 100, "duration": "2s", "minChecks": 2},
    {"name": "canary-30", "weight": 30, "minChecks": 1},
    {"name": "ab", "weight": 50, "match": [{"headers": COHORT}], "minChecks": 1},
    {"name": "full", "weight": 100},
]
SPLIT_REQUESTS = 2000
RATE = 150.0


def http_route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "devstack", "namespace": "default"}],
            "rules": [copy.deepcopy(USER_RULE), copy.deepcopy(RELEASE_RULE)],
        },
    }


GATEWAY_API = {"router": "gatewayApi", "gatewayApi": {"httpRoute": ROUTE}}
ISTIO = {"router": "istio", "istio": {"virtualService": ROUTE}}


def manifest(namespace: str, version: int, hold_at: str = "", traffic: dict[str, Any] = GATEWAY_API) -> dict[str, Any]:
    return scenario.digits_release(
        "digits",
        namespace,
        version,
        1,
        traffic=traffic,
        stages=STAGES,
        holdAt=hold_at,
        analysis={
            "interval": "2s",
            "failureLimit": 2,
            "inconclusiveLimit": 30,
            "minChecks": 2,
            "metrics": [
                {
                    "name": "accuracy",
                    "ratio": ACCURACY_RATIO,
                    "min": 0.8,
                    "compareToBaseline": {"maxDrop": 0.05},
                    "minRequests": 10,
                }
            ],
        },
    )


class Route:
    def __init__(self, cluster: Cluster, namespace: str, kind: str = "httproute", field: str = "rules") -> None:
        self.cluster, self.namespace, self.kind, self.field = cluster, namespace, kind, field

    def get(self) -> dict[str, Any] | None:
        found = self.cluster.kubectl("get", self.kind, ROUTE, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    def rules(self) -> list[dict[str, Any]]:
        route = self.get()
        assert route is not None
        rules: list[dict[str, Any]] = route["spec"][self.field]
        return rules

    def accepted(self) -> bool:
        route = self.get() or {}
        parents = (route.get("status") or {}).get("parents") or []
        generation = route.get("metadata", {}).get("generation")
        return bool(parents) and all(
            any(
                c["type"] == "Accepted" and c["status"] == "True" and c.get("observedGeneration") == generation
                for c in p.get("conditions") or []
            )
            for p in parents
        )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def at_stage(releases: Releases, name: str, timeout: float = 90) -> Callable[[], Any]:
    """Wait until the release is held at stage ``name`` with its route in effect."""

    def reached() -> dict[str, Any] | None:
        status = releases.status()
        stage = status.get("stage") or {}
        if status.get("phase") in ("RolledBack", "Failed"):
            raise AssertionError(f"rollout ended {status.get('phase')}: {status.get('message')}")
        return status if stage.get("name") == name and stage.get("reachedAt") else None

    return lambda: wait_for(reached, timeout, interval=0.5, message=f"stage {name} reached")


def counts_over(generator: Any, requests: int, timeout: float) -> tuple[Any, Any]:
    """Generator stats before and after ``requests`` more were answered."""
    before = generator.stats
    wait_for(
        lambda: generator.stats.sent - before.sent >= requests and generator.stats.answered - before.answered > 0,
        timeout,
        interval=0.5,
        message=f"{requests} requests",
    )
    return before, generator.stats


class Phases:
    """Seconds each part of a scenario took, printed at the end (``pytest -s``, or ``-rP``): the test-time budget."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.took: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.took[name] = round(now - self.last, 1)
        self.last = now
        print(f"phase {name}: {self.took[name]}s (total {now - self.started:.0f}s)", flush=True)


def settle(generator: Any) -> None:
    """Let the data plane catch up with the route just written (Traefik reloads, the generator's cache expires)."""
    counts_over(generator, 300, 20)


def test_gateway_api_router_drives_traefik_through_every_stage_and_gives_the_route_back(
    cluster: Cluster, releases: Releases, operator_process: OperatorProcess
) -> None:
    namespace = releases.namespace
    route = Route(cluster, namespace)
    phases = Phases()

    # A missing route: v1 becomes stable, but the release says the route is not ready, with an event.
    releases.apply(manifest(namespace, 1))
    status = releases.wait_phase(
        "Succeeded", 90, also=lambda s: condition(s, "RouteReady").get("reason") == "RouteMissing"
    )
    assert condition(status, "RouteReady")["status"] == "False"
    wait_for(lambda: "RouteNotReady" in releases.event_reasons(), 20, message="RouteNotReady event")
    phases.done("missing route")

    # A route its Gateway does not accept (Traefik has no such listener): not ready, with the Gateway's reason.
    unaccepted = http_route(namespace)
    unaccepted["spec"]["parentRefs"][0]["sectionName"] = "no-such-listener"
    cluster.kubectl("apply", "-f", "-", input=json.dumps(unaccepted))
    status = releases.wait_phase(
        "Succeeded", 60, also=lambda s: condition(s, "RouteReady").get("reason") == "RouteNotAccepted"
    )
    assert "not accepted by Gateway devstack" in condition(status, "RouteReady")["message"]
    wait_for(
        lambda: any(
            e.get("reason") == "RouteNotReady" and "not accepted" in e.get("message", "") for e in releases.events()
        ),
        20,
        message="RouteNotReady event naming the Gateway's refusal",
    )
    phases.done("route not accepted")

    # The user fixes the route: the operator labels it and reports it ready once Traefik accepts it.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(http_route(namespace)))
    wait_for(route.accepted, 30, message="HTTPRoute accepted by Traefik")
    releases.wait_phase("Succeeded", 30, also=lambda s: condition(s, "RouteReady").get("status") == "True")
    user_rule_as_stored = copy.deepcopy(route.rules()[0])
    release_rule_as_stored = copy.deepcopy(route.rules()[1])
    assert (route.get() or {})["metadata"]["labels"]["modelrelease.io/release"] == "digits"

    with scenario.traffic(
        cluster, namespace, rate=RATE, duration=600, http_route=ROUTE, headers=COHORT, header_share=0.3
    ) as generator:
        # Shadow: every user answer from v1, v2 gets the mirrored copies and is judged on them.
        releases.patch_spec({"model": {"version": 2}, "holdAt": "shadow"})
        at_stage(releases, "shadow")()
        settle(generator)
        before, after = counts_over(generator, 300, 30)
        assert set(_answers(before, after)) == {"1"}, _answers(before, after)
        assert after.mirrored - before.mirrored > 200
        assert after.outcomes[("2", "correct")] > before.outcomes[("2", "correct")]
        wait_for(lambda: releases.status()["analysis"].get("passed", 0) >= 2, 30, message="shadow checks passed")
        phases.done("shadow")

        # Canary: Traefik's weighted split within 3 points of 30% over 2,000 requests.
        releases.patch_spec({"holdAt": "canary-30"})
        at_stage(releases, "canary-30")()
        wait_for(route.accepted, 10, message="Traefik took the weights")
        settle(generator)
        before, after = counts_over(generator, SPLIT_REQUESTS, 60)
        answers = _answers(before, after)
        share = 100 * answers.get("2", 0) / sum(answers.values())
        print(f"canary-30 measured: {share:.2f}% of {sum(answers.values())} answers to v2", flush=True)
        assert sum(answers.values()) >= SPLIT_REQUESTS - 50 and abs(share - 30) <= 3, answers
        phases.done("canary split")

        # A/B: the cohort reaches only v2, everyone else only v1.
        releases.patch_spec({"holdAt": "ab"})
        at_stage(releases, "ab")()
        wait_for(route.accepted, 10, message="Traefik took the cohort rule")
        settle(generator)
        before, after = counts_over(generator, 600, 30)
        cohort = {k: after.cohort_versions[k] - before.cohort_versions.get(k, 0) for k in after.cohort_versions}
        assert cohort.get((True, "2"), 0) > 100 and cohort.get((True, "1"), 0) == 0, cohort
        assert cohort.get((False, "1"), 0) > 300 and cohort.get((False, "2"), 0) == 0, cohort
        phases.done("a/b cohort")

        # Someone else edits the operator's part: put back on the next pass (the route watch wakes it).
        edited = [r for r in route.rules() if not r.get("name", "").startswith("modelrelease-")]
        cluster.kubectl(
            "patch", "httproute", ROUTE, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"rules": edited}})
        )
        wait_for(
            lambda: any(r.get("name") == "modelrelease-digits-cohort-0" for r in route.rules()),
            15,
            message="cohort rule put back",
        )
        phases.done("edit put back")

        # A rollback: 100% stable in the route within the pass that decides it.
        releases.annotate("modelrelease.io/abort", "now")
        releases.wait_phase("RolledBack", 30)
        wait_for(lambda: route.rules() == [user_rule_as_stored, release_rule_as_stored], 3, message="route at stable")
        phases.done("rollback")

        # A bad model is rolled back from shadow: judged on mirrored copies, never seen by a user.
        seen_before = generator.stats
        releases.patch_spec({"model": {"version": 3}, "holdAt": ""})
        status = releases.wait_phase("RolledBack", 120, also=lambda s: s.get("rejectedVersion") == 3)
        rolled_back = [h for h in status["history"] if h["version"] == 3 and h["outcome"] == "RolledBack"]
        assert rolled_back and rolled_back[-1].get("stage") == "shadow", status["history"]
        seen = generator.stats
        assert seen.versions.get("3", 0) == 0, "a user saw the bad model's answer"
        assert seen.outcomes[("3", "incorrect")] > seen_before.outcomes.get(("3", "incorrect"), 0)
        phases.done("bad model at shadow")

    # Deleting the release gives the route back: the user's own rule byte-identical, no label, no leftovers.
    cluster.kubectl("delete", "modelrelease", "digits", "-n", namespace, "--wait=true", "--timeout=30s")
    restored = route.get()
    assert restored is not None
    assert restored["spec"]["rules"] == [user_rule_as_stored, release_rule_as_stored]
    assert "modelrelease.io/release" not in (restored["metadata"].get("labels") or {})
    phases.done("release deleted")


VS_USER_ROUTE = {
    "name": "admin",
    "match": [{"uri": {"prefix": "/admin"}}],
    "headers": {"request": {"add": {"x-team": "ml"}}},
    "route": [{"destination": {"host": "digits", "port": {"number": 8501}}}],
}
VS_RELEASE_ROUTE = {
    "name": "predict",
    "match": [{"uri": {"prefix": "/tensorflow.serving.PredictionService/"}}],
    "route": [{"destination": {"host": "digits-stable", "port": {"number": 8500}}}],
}


def virtual_service(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": ROUTE, "namespace": namespace},
        "spec": {"hosts": ["digits"], "http": [copy.deepcopy(VS_USER_ROUTE), copy.deepcopy(VS_RELEASE_ROUTE)]},
    }


def test_istio_router_edits_the_virtual_service_through_every_stage_and_gives_it_back(
    cluster: Cluster, releases: Releases, operator_process: OperatorProcess
) -> None:
    namespace = releases.namespace
    route = Route(cluster, namespace, "virtualservice", "http")
    phases = Phases()
    releases.apply(manifest(namespace, 1, traffic=ISTIO))
    status = releases.wait_phase(
        "Succeeded", 90, also=lambda s: condition(s, "RouteReady").get("reason") == "RouteMissing"
    )
    wait_for(lambda: "RouteNotReady" in releases.event_reasons(), 20, message="RouteNotReady event")
    phases.done("missing route")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(virtual_service(namespace)))
    releases.wait_phase("Succeeded", 30, also=lambda s: condition(s, "RouteReady").get("status") == "True")
    as_written = copy.deepcopy(route.rules())
    assert as_written == [VS_USER_ROUTE, VS_RELEASE_ROUTE]

    with scenario.traffic(
        cluster, namespace, rate=200, duration=600, virtual_service=ROUTE, headers=COHORT, header_share=0.3
    ) as generator:
        releases.patch_spec({"model": {"version": 2}, "holdAt": "shadow"})
        at_stage(releases, "shadow")()
        settle(generator)
        before, after = counts_over(generator, 300, 30)
        assert set(_answers(before, after)) == {"1"} and after.mirrored - before.mirrored > 200
        assert route.rules()[1]["mirror"] == {"host": "digits-canary", "port": {"number": 8500}}
        phases.done("shadow")

        releases.patch_spec({"holdAt": "canary-30"})
        at_stage(releases, "canary-30")()
        settle(generator)
        before, after = counts_over(generator, SPLIT_REQUESTS, 60)
        answers = _answers(before, after)
        share = 100 * answers.get("2", 0) / sum(answers.values())
        print(f"canary-30 measured: {share:.2f}% of {sum(answers.values())} answers to v2", flush=True)
        assert sum(answers.values()) >= SPLIT_REQUESTS - 50 and abs(share - 30) <= 3, answers
        phases.done("canary split")

        releases.patch_spec({"holdAt": "ab"})
        at_stage(releases, "ab")()
        settle(generator)
        before, after = counts_over(generator, 600, 30)
        cohort = {k: after.cohort_versions[k] - before.cohort_versions.get(k, 0) for k in after.cohort_versions}
        assert cohort.get((True, "2"), 0) > 100 and cohort.get((True, "1"), 0) == 0, cohort
        assert cohort.get((False, "1"), 0) > 300 and cohort.get((False, "2"), 0) == 0, cohort
        phases.done("a/b cohort")

        cluster.kubectl(
            "patch",
            "virtualservice",
            ROUTE,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"http": as_written}}),
        )
        wait_for(lambda: route.rules()[1].get("name") == "modelrelease-digits-cohort-0", 15, message="put back")
        phases.done("edit put back")

        releases.annotate("modelrelease.io/abort", "now")
        releases.wait_phase("RolledBack", 30)
        wait_for(lambda: route.rules() == as_written, 3, message="virtual service at stable")
        phases.done("rollback")

    cluster.kubectl("delete", "modelrelease", "digits", "-n", namespace, "--wait=true", "--timeout=30s")
    restored = route.get()
    assert restored is not None and restored["spec"]["http"] == as_written
    assert "modelrelease.io/release" not in (restored["metadata"].get("labels") or {})
    phases.done("release deleted")
    assert status["stableVersion"] == 1


def _answers(before: Any, after: Any) -> dict[str, int]:
    return {
        v: after.versions[v] - before.versions.get(v, 0)
        for v in after.versions
        if after.versions[v] > before.versions.get(v, 0)
    }
