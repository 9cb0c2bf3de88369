"""The operator SIGKILLed at random moments of a rollout and started again: the rollout ends as it would have.

All rollout state lives in the release's status, so a new process must
resume where the killed one stopped.  What must hold at every moment, not
only at the end, is checked on every change to the release's Deployments as
the API server reports them (a watch): never two candidates with pods, and
never less than full serving capacity (the stable Deployment is never lost
or shrunk before its successor is ready).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from rollout_support import OperatorProcess, Releases

from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(420)]

SEED = 20261124
KILLS = 5
REPLICAS = 2
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary-33", "weight": 33, "duration": "6s"},
    {"name": "canary-50", "weight": 50, "duration": "6s"},
    {"name": "full", "weight": 100},
]


class DeploymentInvariants:
    """Watches the release's Deployments and records every moment an invariant did not hold."""

    def __init__(self, cluster: Cluster, namespace: str, release: str, capacity: int) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = f"modelrelease.io/release={release}"
        self.capacity = capacity
        self.violations: list[str] = []
        self.changes = 0
        self.candidate_versions: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deployment-invariants", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> DeploymentInvariants:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        from kubernetes import client, watch

        api = client.AppsV1Api(self.cluster.api_client())
        try:
            listed = api.list_namespaced_deployment(self.namespace, label_selector=self.selector)
            current = {d.metadata.name: d for d in listed.items}
            self._check(current)
            version = listed.metadata.resource_version
            while not self._stop.is_set():
                stream = watch.Watch().stream(
                    api.list_namespaced_deployment,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=2,
                )
                for event in stream:
                    deployment = event["object"]
                    version = deployment.metadata.resource_version
                    if event["type"] == "DELETED":
                        current.pop(deployment.metadata.name, None)
                    else:
                        current[deployment.metadata.name] = deployment
                    self._check(current)
        except BaseException as exc:  # reported by the test: a watch that died checks nothing
            self.error = exc

    def _check(self, deployments: dict[str, Any]) -> None:
        self.changes += 1
        labels = {name: d.metadata.labels or {} for name, d in deployments.items()}
        running = {name: d for name, d in deployments.items() if (d.spec.replicas or 0) > 0}
        candidates = [name for name in running if labels[name].get("modelrelease.io/role") == "canary"]
        self.candidate_versions.update(labels[name].get("modelrelease.io/version", "?") for name in candidates)
        serving = {
            name: min(d.spec.replicas or 0, (d.status and d.status.ready_replicas) or 0) for name, d in running.items()
        }
        if len(candidates) > 1:
            self.violations.append(f"two candidates with pods: {sorted(candidates)}")
        if max(serving.values(), default=0) < self.capacity:
            self.violations.append(f"no Deployment serves at full capacity {self.capacity}: {serving}")


def test_rollout_survives_five_sigkills_of_the_operator_and_ends_promoted(
    releases: Releases, traffic: Any, operator_process: OperatorProcess, cluster: Cluster
) -> None:
    manifest = releases.manifest(1, stages=STAGES)
    manifest["spec"]["serving"]["replicas"] = REPLICAS
    releases.apply(manifest)
    releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 1)
    rng = random.Random(SEED)
    moments = [rng.uniform(1.0, 4.0) for _ in range(KILLS)]
    killed_during: list[tuple[str | None, str | None]] = []

    with DeploymentInvariants(cluster, releases.namespace, releases.name, REPLICAS) as invariants, traffic(rate=30):
        releases.set_version(2)
        for delay in moments:
            # Fault injection at a random moment (the point of the test), not a wait for anything.
            time.sleep(delay)
            status = releases.status()
            operator_process.kill()
            killed_during.append((status.get("phase"), (status.get("stage") or {}).get("name")))
            operator_process.start()
        final = releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 2)
        wait_for(lambda: (releases.deployment(1) or {}).get("spec", {}).get("replicas") == 0, 60, message="v1 at 0")

    print(f"\nkilled after {', '.join(f'{m:.1f}s' for m in moments)} in {killed_during}")
    assert invariants.error is None, f"the Deployment watch died: {invariants.error!r}"
    assert invariants.changes > 10, "the watch saw too little to vouch for anything"
    assert not invariants.violations, invariants.violations[:5]
    assert invariants.candidate_versions == {"2"}
    in_rollout = [phase for phase, _ in killed_during if phase not in ("Succeeded", "RolledBack")]
    assert len(in_rollout) == KILLS, f"every kill must hit the running rollout: {killed_during}"
    completed = [h["stage"] for h in final["history"] if h["outcome"] == "StageCompleted" and h["version"] == 2]
    assert completed == [s["name"] for s in STAGES], completed
    assert [h["outcome"] for h in final["history"] if h["version"] == 2].count("Promoted") == 1
    assert (releases.deployment(2) or {})["status"].get("readyReplicas") == REPLICAS
