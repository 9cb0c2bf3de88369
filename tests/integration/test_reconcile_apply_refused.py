"""Passes the API server cuts short: objects it refuses (a condition, one event, a slow retry), a release it deleted.

The API server accepts any ``podTemplate`` the CRD's schema allows, but the
Deployment built from it can still be refused (``restartPolicy: Never`` is
invalid for a Deployment).  That used to post an ``ApplyFailed`` Warning
every 5 s, forever, with nothing in the release's conditions.
"""

from __future__ import annotations

from typing import Any

import pytest
from reconcile_passes import PARKED, exists, manifest, run_pass, written_after

from devstack import scenario
from devstack.scenario import Release
from devstack.testing import Cluster
from modelrelease.reconcile import REFUSED_RETRY

pytestmark = [pytest.mark.cluster]


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Release:
    scenario.install_crd(cluster)
    return Release(cluster, namespace)


def condition(release: Release, type_: str) -> dict[str, Any] | None:
    return next((c for c in release.status().get("conditions", []) if c["type"] == type_), None)


def test_a_deployment_the_api_server_refuses_gives_a_condition_one_event_and_a_slow_retry(
    cluster: Cluster, release: Release
) -> None:
    refused = manifest(release.name, release.namespace, version=1)
    refused["spec"]["serving"]["podTemplate"] = {**PARKED, "restartPolicy": "Never"}
    release.apply(refused)

    outcomes = [run_pass(cluster, release) for _ in range(3)]

    assert [o.next_in for o in outcomes] == [REFUSED_RETRY] * 3
    failed = condition(release, "ApplyFailed")
    assert failed is not None and failed["status"] == "True", release.status().get("conditions")
    assert "restartPolicy" in failed["message"]
    events = [e for e in release.events() if e["type"] == "Warning" and e["reason"] == "ApplyFailed"]
    assert len(events) == 1 and events[0].get("count", 1) == 1
    # The decision was committed with the status write, so its event is posted although the apply failed.
    reasons = [e["reason"] for e in release.events()]
    assert "InitialVersion" in reasons, reasons
    assert not exists(cluster, "deployment", f"{release.name}-v1", release.namespace)

    release.apply(manifest(release.name, release.namespace, version=1))
    run_pass(cluster, release)

    failed = condition(release, "ApplyFailed")
    assert failed is not None and failed["status"] == "False"
    assert exists(cluster, "deployment", f"{release.name}-v1", release.namespace)


def test_a_release_deleted_during_a_pass_ends_the_pass_quietly(cluster: Cluster, release: Release) -> None:
    # The fuzz saw this as a traceback on every deletion: the status write of a pass that began before it got a 404.
    release.apply(manifest(release.name, release.namespace, version=1))

    def delete() -> None:
        cluster.kubectl("delete", "modelrelease", release.name, "-n", release.namespace, "--wait=true")

    outcome = run_pass(cluster, release, kube_type=written_after("get_release", delete))

    assert outcome.next_in is None and outcome.phase is None
    assert not exists(cluster, "modelrelease", release.name, release.namespace)
