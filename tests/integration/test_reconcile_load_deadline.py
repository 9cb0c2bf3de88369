"""The model-load deadline counts from when the candidate's pods were created, not from the operator's own stamp.

The state under test is what an operator leaves when it dies right after
writing "rollout of v2 started" and before applying anything, then stays
down longer than ``--load-timeout``: status says v2 started an hour ago,
and no Deployment of v2 exists.  The restarted operator must create it and
wait, then time the load from the pods' creationTimestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from reconcile_passes import STAGES, exists, manifest, run_pass, write_status

from devstack import scenario
from devstack.scenario import Release
from devstack.testing import Cluster, wait_for
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.engine import EngineSettings
from modelrelease.engine.clock import format_time, parse_time
from modelrelease.engine.serving_hash import serving_hash

pytestmark = [pytest.mark.cluster]

LOAD_TIMEOUT = timedelta(seconds=60)


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Release:
    scenario.install_crd(cluster)
    return Release(cluster, namespace)


def left_by_a_crash(cluster: Cluster, release: Release, started: datetime) -> None:
    """v1 stable, v2's rollout written to status at ``started``, nothing applied since."""
    body = manifest(release.name, release.namespace, version=2)
    release.apply(body)
    spec = ModelReleaseSpec.model_validate(body["spec"])
    write_status(
        cluster,
        release,
        {
            "phase": "Progressing",
            "stableVersion": 1,
            "candidateVersion": 2,
            "candidateStartedAt": format_time(started),
            "servingHash": serving_hash(spec.serving),
            "stage": {"index": 0, "name": STAGES[0]["name"], "weight": STAGES[0]["weight"]},
            "observedGeneration": release.get()["metadata"]["generation"],
        },
    )


def pods_created(cluster: Cluster, release: Release, version: int) -> list[datetime]:
    pods = cluster.get("pods", namespace=release.namespace, selector=f"modelrelease.io/version={version}")
    return [parse_time(p["metadata"]["creationTimestamp"]) for p in pods]


def test_an_operator_down_longer_than_the_load_timeout_does_not_roll_back_on_restart(
    cluster: Cluster, release: Release
) -> None:
    left_by_a_crash(cluster, release, started=datetime.now(UTC) - timedelta(hours=1))
    assert not exists(cluster, "deployment", "digits-v2", release.namespace)
    settings = EngineSettings(load_timeout=LOAD_TIMEOUT)

    run_pass(cluster, release, settings=settings)

    status = release.status()
    assert status["phase"] == "Progressing", status.get("message")
    assert status["candidateVersion"] == 2
    assert exists(cluster, "deployment", "digits-v2", release.namespace)
    created = wait_for(lambda: pods_created(cluster, release, 2), 60, message="pods of v2 created")
    run_pass(cluster, release, settings=settings)
    assert release.status()["phase"] == "Progressing", release.status().get("message")
    assert "waiting for v2 to load" in release.status()["message"]

    # The deadline does run: from the pods' creation, as the API server recorded it.
    later = min(created) + LOAD_TIMEOUT + timedelta(seconds=5)
    run_pass(cluster, release, settings=settings, clock=lambda: later)
    status = release.status()
    assert status["phase"] == "RolledBack"
    assert "not AVAILABLE within 0:01:00" in status["message"]


def test_a_candidate_whose_pods_can_never_be_created_still_times_out(cluster: Cluster, release: Release) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    cluster.apply(quota, namespace=release.namespace)
    left_by_a_crash(cluster, release, started=datetime.now(UTC) - timedelta(hours=1))
    settings = EngineSettings(load_timeout=LOAD_TIMEOUT)
    run_pass(cluster, release, settings=settings)

    def failing_since() -> datetime | None:
        deployment = cluster.get("deployment", "digits-v2", namespace=release.namespace)
        for condition in deployment.get("status", {}).get("conditions", []):
            if condition["type"] == "ReplicaFailure" and condition["status"] == "True":
                return parse_time(condition["lastTransitionTime"])
        return None

    since = wait_for(failing_since, 60, message="the Deployment reports that its ReplicaSet cannot create pods")
    run_pass(cluster, release, settings=settings)
    assert release.status()["phase"] == "Progressing", release.status().get("message")
    run_pass(cluster, release, settings=settings, clock=lambda: since + LOAD_TIMEOUT + timedelta(seconds=5))
    assert release.status()["phase"] == "RolledBack"
