"""Every pass that acts is conflict-checked, and a pass over an unchanged release writes nothing.

Before, a pass whose status came out unchanged skipped the status patch,
the one write that carries the resourceVersion precondition, and went on
to apply objects decided from a read nobody had checked: if another
writer changed the release in between, the pass still acted on stale data.
"""

from __future__ import annotations

import pytest
from reconcile_passes import exists, manifest, run_pass, with_kube, written_after

from devstack import scenario
from devstack.scenario import Release
from devstack.testing import Cluster
from modelrelease.kube.client import Kube, StatusConflict
from modelrelease.reconcile import CONFLICT_RETRY

pytestmark = [pytest.mark.cluster]


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Release:
    scenario.install_crd(cluster)
    release = Release(cluster, namespace)
    release.apply(manifest(release.name, namespace, version=1))
    run_pass(cluster, release)
    assert release.status()["phase"] == "Initializing"
    assert exists(cluster, "service", "digits-stable", namespace)
    return release


def resource_version(release: Release) -> str:
    return str(release.get()["metadata"]["resourceVersion"])


def test_a_pass_on_a_release_changed_since_its_read_applies_nothing(cluster: Cluster, release: Release) -> None:
    run_pass(cluster, release)  # the status is now what every pass computes: nothing to write
    cluster.kubectl("delete", "service", "digits-stable", "-n", release.namespace)
    someone_else = written_after("get_release", lambda: release.annotate("example.com/owner", "team-ml"))

    outcome = run_pass(cluster, release, kube_type=someone_else)

    assert outcome.next_in == CONFLICT_RETRY
    assert not exists(cluster, "service", "digits-stable", release.namespace)
    run_pass(cluster, release)  # a pass on fresh data does act
    assert exists(cluster, "service", "digits-stable", release.namespace)


def test_a_pass_that_changes_nothing_writes_nothing(cluster: Cluster, release: Release) -> None:
    run_pass(cluster, release)
    before = resource_version(release)
    for _ in range(3):
        run_pass(cluster, release)
    assert resource_version(release) == before


def test_the_precondition_alone_is_checked_without_a_write(cluster: Cluster, release: Release) -> None:
    current = resource_version(release)

    async def fence(kube: Kube) -> str:
        return await kube.patch_status(release.namespace, release.name, current, None)

    assert with_kube(cluster, fence) == current
    assert resource_version(release) == current
    release.annotate("example.com/owner", "team-ml")
    assert resource_version(release) != current
    with pytest.raises(StatusConflict):
        with_kube(cluster, fence)
