"""Rollouts that end with the new version stable, on devstack with real model servers, Prometheus and traffic."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rollout_support import OperatorProcess, Releases, answers_since

from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

PROMOTION_STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary-25", "weight": 25, "duration": "8s"},
    # Three more pods must start and load first; the stage's 15 s count from when the router reports 50%.
    {"name": "canary-50", "weight": 50, "duration": "15s"},
    {"name": "full", "weight": 100, "minChecks": 1},
]
# With 3 stable replicas the replicas router makes 25% with one candidate pod and 50% with three.
REACHABLE_WEIGHT = {"canary-25": 25, "canary-50": 50}


def test_first_version_becomes_stable_with_every_replica_ready(releases: Releases) -> None:
    status = releases.stable_from_scratch(version=1)

    assert status["stableVersion"] == 1
    assert status.get("candidateVersion") is None
    deployment = releases.deployment(1)
    assert deployment is not None
    assert deployment["status"].get("readyReplicas") == 3
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert releases.wait_events("Promoted")


def test_good_version_walks_every_stage_in_order_at_the_measured_weights_and_is_promoted(
    releases: Releases, traffic: Any, operator_process: OperatorProcess
) -> None:
    releases.stable_from_scratch(version=1)
    manifest = releases.manifest(2, stages=PROMOTION_STAGES)

    with traffic(rate=50) as generator:
        releases.apply(manifest)
        windows = _measure_weight_stages(releases, generator, timeout=150)
        final = releases.wait_phase("Succeeded", 30, also=lambda s: s.get("stableVersion") == 2)

    completed = [h["stage"] for h in final["history"] if h["outcome"] == "StageCompleted" and h["version"] == 2]
    assert completed == [s["name"] for s in PROMOTION_STAGES]
    assert set(windows) == set(REACHABLE_WEIGHT)
    for stage, (actual_weights, answers) in windows.items():
        assert REACHABLE_WEIGHT[stage] in actual_weights, f"{stage}: status reported {actual_weights}"
        total = sum(answers.values())
        assert total >= 100, f"too few answers to measure {stage}: {answers}"
        measured = 100 * answers.get("2", 0) / total
        low, high = min(actual_weights), max(actual_weights)
        assert low - 10 <= measured <= high + 10, f"{stage}: status says {actual_weights}%, traffic {measured:.1f}%"
    wait_for(lambda: (releases.deployment(1) or {}).get("spec", {}).get("replicas") == 0, 30, message="v1 at zero")
    assert (releases.deployment(2) or {})["spec"]["replicas"] == 3
    assert "modelrelease_promotions_total" in operator_process.metrics()


def _measure_weight_stages(
    releases: Releases, generator: Any, timeout: float
) -> dict[str, tuple[set[int], dict[str, int]]]:
    """Answers per version in each canary stage, counted from when status says the router reached its weight.

    The window opens at ``status.stage.reachedAt`` (plus a second: the
    traffic generator, like kube-proxy, learns about new endpoints a moment
    later) and closes when the stage changes.  It keeps every actual weight
    status reported meanwhile: on a loaded machine a stable pod's readiness
    can flap during a stage, and the traffic follows the weight of the moment.
    """
    windows: dict[str, tuple[set[int], dict[str, int]]] = {}
    open_window: tuple[str, set[int], float, Any] | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = releases.status()
        stage = status.get("stage") or {}
        name, weight = stage.get("name"), stage.get("actualWeight", 0)
        if open_window is not None and name != open_window[0]:
            if open_window[3] is not None:
                windows[open_window[0]] = (open_window[1], answers_since(open_window[3], generator.stats))
            open_window = None
        if status.get("phase") == "Succeeded" and status.get("stableVersion") == 2:
            return windows
        if open_window is None and name in REACHABLE_WEIGHT and name not in windows and stage.get("reachedAt"):
            open_window = (name, set(), time.monotonic() + 1.0, None)
        if open_window is not None:
            open_window[1].add(weight)
            if open_window[3] is None and time.monotonic() >= open_window[2]:
                open_window = (open_window[0], open_window[1], open_window[2], generator.stats)
        time.sleep(0.3)  # polling cadence of the observer, not synchronisation: the loop waits on status
    raise TimeoutError(f"rollout did not finish in {timeout}s; measured {windows}")


def test_deleting_the_release_garbage_collects_everything_it_owned(releases: Releases, cluster: Cluster) -> None:
    releases.stable_from_scratch(version=1)
    selector = f"modelrelease.io/release={releases.name}"
    owned = ("deployments", "services", "configmaps")
    assert all(cluster.get(kind, namespace=releases.namespace, selector=selector) for kind in owned)

    cluster.kubectl("delete", "modelrelease", releases.name, "-n", releases.namespace, "--wait=true")

    def nothing_left() -> bool:
        kinds = (*owned, "pods")
        return not any(cluster.get(kind, namespace=releases.namespace, selector=selector) for kind in kinds)

    wait_for(nothing_left, 60, interval=0.5, message="owned objects garbage-collected")
    golden = cluster.kubectl("get", "configmap", "digits-golden", "-n", releases.namespace, check=False)
    assert golden.returncode == 0, "the user's golden set is not the operator's to delete"
