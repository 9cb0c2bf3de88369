"""Objects deleted by hand are put back by the running operator, and a recreated candidate starts over as unready.

- A Service deleted while the release is idle (Succeeded: never polled)
  used to stay gone until something else woke the release; the operator
  now watches its Services as it watches its Deployments.
- A candidate Deployment deleted mid-stage used to be recreated while the
  release still counted the candidate as ready: traffic went to pods that
  were starting, checks went inconclusive and the release paused.  Now the
  candidate is unready until its new pods are, with a Warning event, and
  the stage carries on.
"""

from __future__ import annotations

from typing import Any

import pytest
from rollout_support import Releases

from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 25, "duration": "10m"},
    {"name": "full", "weight": 100},
]


def service_exists(cluster: Cluster, namespace: str, name: str) -> bool:
    return cluster.kubectl("get", "service", name, "-n", namespace, check=False).returncode == 0


def test_a_service_deleted_while_the_release_is_idle_is_put_back(cluster: Cluster, releases: Releases) -> None:
    releases.stable_from_scratch(version=1)
    for name in ("digits", "digits-stable"):
        cluster.kubectl("delete", "service", name, "-n", releases.namespace)

    for name in ("digits", "digits-stable"):
        wait_for(lambda n=name: service_exists(cluster, releases.namespace, n), 30, message=f"Service {name} back")
    service: dict[str, Any] = cluster.get("service", "digits-stable", namespace=releases.namespace)
    assert service["spec"]["selector"]["modelrelease.io/version"] == "1"
    assert releases.status()["phase"] == "Succeeded"


def test_a_deleted_candidate_deployment_is_unready_until_its_new_pods_are_ready(
    cluster: Cluster, releases: Releases, traffic: Any
) -> None:
    releases.stable_from_scratch(version=1)
    with traffic(rate=30):
        releases.apply(releases.manifest(2, stages=STAGES))
        wait_for(
            lambda: (
                (s := releases.status()).get("stage", {}).get("name") == "canary"
                and bool(s.get("candidateReadyAt"))
                and s.get("analysis", {}).get("passed", 0) >= 1
            ),
            120,
            message="v2 ready, in its canary stage, with a passing check",
        )
        first_ready = releases.status()["candidateReadyAt"]
        cluster.kubectl("delete", "deployment", "digits-v2", "-n", releases.namespace)

        seen: list[dict[str, Any]] = []

        def ready_again() -> bool:
            status = releases.status()
            seen.append(status)
            ready_at = status.get("candidateReadyAt")
            return bool(ready_at) and ready_at != first_ready

        wait_for(ready_again, 120, interval=0.3, message="v2 ready again on its new pods")
        second_ready = releases.status()["candidateReadyAt"]

        def checked_on_new_pods() -> bool:
            analysis = releases.status().get("analysis", {})
            return analysis.get("lastCheckAt", "") > second_ready and analysis.get("lastVerdict") == "pass"

        wait_for(checked_on_new_pods, 90, interval=0.5, message="a passing check on the new pods")

    unready = [s for s in seen if not s.get("candidateReadyAt")]
    assert unready, "the candidate was never reported unready while its pods were replaced"
    assert all(s.get("stage", {}).get("actualWeight", 0) == 0 for s in unready)
    status = releases.status()
    assert status["candidateVersion"] == 2 and status["stage"]["name"] == "canary"
    # The decision's events are posted after its status write: wait for the second CandidateReady.
    wait_for(
        lambda: releases.event_reasons().count("CandidateReady") >= 2,
        30,
        interval=0.5,
        message="a second CandidateReady",
    )
    reasons = releases.event_reasons()
    assert "CandidateRestarted" in reasons
    assert reasons.count("CandidateReady") == 2
