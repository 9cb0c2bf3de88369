"""Scale smoke: 100 releases on kwok nodes reach their phases, and idle releases cost no API writes.

Each release has one fake pod (devstack.kwok) answered by devstack.fake_serving.
The test asserts outcomes only; how fast they come is measured by
``make bench-scale`` (docs/benchmarks.md).  Idle writes are counted from the
API server's audit log for the test's namespace (devstack.scale.audit_writes
says why not ``apiserver_request_total``: the devstack is shared under xdist),
and from the operator's own request counter.
"""

from __future__ import annotations

import time

import pytest
from rollout_support import OperatorProcess

from devstack import scale
from devstack.testing import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

RELEASES = 100
ROLLED = 20
FULL_ONLY = [{"name": "full", "weight": 100}]
IDLE_WINDOW = 20.0
"""Seconds of measurement while every release is idle (a measurement window, not a wait for a condition)."""


def test_100_releases_reach_their_phases_and_idle_releases_write_nothing(
    cluster: Cluster,
    operator_process: OperatorProcess,
    release_namespace: str,
    namespace_prefix: str,
) -> None:
    cluster.kwok_nodes(3)
    names = [f"scale-{index:03d}" for index in range(RELEASES)]
    log_path = operator_process.log_path.parent / "fake-serving.log"
    with scale.FakeServing(cluster, namespace_prefix, log_path):
        scale.apply_all(cluster, [scale.scale_release(n, release_namespace, 1, FULL_ONLY) for n in names])
        scale.wait_phases(cluster, release_namespace, {n: ("Succeeded", 1) for n in names}, timeout=900)

        rolled = names[:ROLLED]
        scale.set_versions(cluster, release_namespace, rolled, 2)
        expected = {n: ("Succeeded", 2 if n in rolled else 1) for n in names}
        # Idle: every release at its phase, every retired version scaled down, every Deployment at its spec.
        scale.wait_phases(cluster, release_namespace, expected, timeout=900, settled=True)
        scale.wait_deployments_settled(cluster, release_namespace, timeout=600)
        offset = scale.audit_offset(cluster)
        before = scale.operator_requests(operator_process.metrics())
        time.sleep(IDLE_WINDOW)  # the measurement window itself
        writes = scale.audit_writes(cluster, offset, [release_namespace])
        requests = scale.delta(scale.operator_requests(operator_process.metrics()), before)

    assert writes.count == 0, f"idle releases wrote {writes.by_resource}: {writes.sample}"
    sent = {method: count for method, count in requests.items() if method not in ("WATCH",) and count}
    assert not sent, f"the operator sent requests for idle releases: {sent}"
    deployments = scale.deployments(cluster, release_namespace)
    assert all(f"{n}-v2" in deployments for n in rolled)
