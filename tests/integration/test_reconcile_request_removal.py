"""A consumed request annotation is removed only if it still holds the value the pass acted on.

Between a pass's read and its removal of ``modelrelease.io/<kind>``, a
person may write the request again with another value (approve the next
stage, say).  That new request must survive for the next pass; before, the
removal had no precondition and silently dropped it.
"""

from __future__ import annotations

import pytest
from reconcile_passes import manifest, run_pass, with_kube, written_after

from devstack import scenario
from devstack.scenario import Release
from devstack.testing import Cluster
from modelrelease.kube.client import Kube

pytestmark = [pytest.mark.cluster]

ABORT = "modelrelease.io/abort"
APPROVE = "modelrelease.io/approve"


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Release:
    scenario.install_crd(cluster)
    release = Release(cluster, namespace)
    release.apply(manifest(release.name, namespace, version=1))
    return release


def annotations(release: Release) -> dict[str, str]:
    found: dict[str, str] = release.get()["metadata"].get("annotations") or {}
    return found


def test_a_request_rewritten_between_read_and_removal_survives_the_pass(cluster: Cluster, release: Release) -> None:
    """Re-written after the pass's status write (which is conflict-checked) and before its removal."""
    release.annotate(ABORT, "first")
    rewritten = written_after("patch_status", lambda: release.annotate(ABORT, "second"))

    run_pass(cluster, release, kube_type=rewritten)

    assert annotations(release).get(ABORT) == "second"
    # The next pass consumes the new request (it cannot be acted on here: it is refused with an event).
    run_pass(cluster, release)
    assert ABORT not in annotations(release)


def test_a_request_left_as_it_was_read_is_removed(cluster: Cluster, release: Release) -> None:
    release.annotate(ABORT, "now")
    run_pass(cluster, release)
    assert ABORT not in annotations(release)
    assert "RequestIgnored" in [e["reason"] for e in release.events()]


def test_removal_tests_each_request_on_its_own(cluster: Cluster, release: Release) -> None:
    release.annotate(ABORT, "now")
    release.annotate(APPROVE, "canary")
    release.annotate(APPROVE, "full")  # re-written after the (simulated) read below

    async def remove(kube: Kube) -> list[str]:
        return await kube.remove_annotations(release.namespace, release.name, {ABORT: "now", APPROVE: "canary"})

    kept = with_kube(cluster, remove)
    assert kept == [APPROVE]
    assert annotations(release).get(APPROVE) == "full"
    assert ABORT not in annotations(release)
