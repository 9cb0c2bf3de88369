"""Fencing on the real API server: a replica that knows it is not the leader writes nothing, and its pass ends quietly.

Every check compares what the API server holds (resourceVersions, data,
replicas, annotations, events) before and after, and a positive control
shows the same ``Kube`` writing once it may.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from leader_support import api_client, write_lease

from devstack import scenario
from devstack.testing import Cluster
from modelrelease.kube.client import Kube
from modelrelease.kube.fencing import LeadershipLost
from modelrelease.leader import LeaderElector, LeaseConfig
from modelrelease.measure import Analyzer
from modelrelease.reconcile import FENCED_RETRY, OperatorContext, PassOutcome, reconcile
from modelrelease.routing.replicas import ReplicasRouter

pytestmark = pytest.mark.cluster

MINIMAL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "minimal.yaml"
ABORT = "modelrelease.io/abort"


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    scenario.install_crd(cluster)


def _release(namespace: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(MINIMAL.read_text())
    manifest["metadata"]["namespace"] = namespace
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    return manifest


def _config_map(namespace: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": {"value": value},
    }


def _deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
        },
    }


def _versions(cluster: Cluster, namespace: str) -> dict[str, str]:
    return {
        kind: cluster.get(kind, name, namespace)["metadata"]["resourceVersion"]
        for kind, name in (("configmap", "settings"), ("deployment", "web"), ("modelrelease", "digits"))
    }


def test_a_kube_that_may_not_write_changes_nothing_and_posts_no_event(
    cluster: Cluster, namespace: str, crd: None
) -> None:
    cluster.apply([_config_map(namespace, "1"), _deployment(namespace), _release(namespace, {ABORT: "now"})])
    before = _versions(cluster, namespace)

    async def attempts() -> list[str]:
        api = await api_client(cluster)
        leading = False
        kube = Kube(api, may_write=lambda: leading)
        try:
            release = await kube.get_release(namespace, "digits")  # reads stay allowed
            assert release is not None
            writes: dict[str, Callable[[], Awaitable[Any]]] = {
                "apply": lambda: kube.apply(_config_map(namespace, "2")),
                "scale": lambda: kube.scale(namespace, "web", 3),
                "patch_status": lambda: kube.patch_status(
                    namespace, "digits", release["metadata"]["resourceVersion"], {"phase": "Failed"}
                ),
                "remove_annotations": lambda: kube.remove_annotations(namespace, "digits", {ABORT: "now"}),
                "event": lambda: kube.event(release, "Warning", "Fenced", "a replica without the Lease posted this"),
                "delete_deployment": lambda: kube.delete_deployment(namespace, "web"),
                "delete_config_map": lambda: kube.delete_config_map(namespace, "settings"),
            }
            refused = []
            for name, write in writes.items():
                with pytest.raises(LeadershipLost):
                    await write()
                refused.append(name)
            leading = True  # the positive control: the same Kube writes once it leads
            await kube.apply(_config_map(namespace, "3"))
            return refused
        finally:
            await api.close()

    refused = asyncio.run(attempts())
    assert len(refused) == 7
    after = _versions(cluster, namespace)
    assert after["deployment"] == before["deployment"]
    assert after["modelrelease"] == before["modelrelease"]
    release = cluster.get("modelrelease", "digits", namespace)
    assert "status" not in release
    assert release["metadata"]["annotations"][ABORT] == "now"
    assert cluster.get("deployment", "web", namespace)["spec"]["replicas"] == 0
    assert cluster.events(namespace, involved="digits") == []
    assert cluster.get("configmap", "settings", namespace)["data"] == {"value": "3"}  # only the leader's write


def test_a_pass_that_loses_the_lease_after_its_status_write_applies_nothing(
    cluster: Cluster, namespace: str, crd: None
) -> None:
    cluster.apply(_release(namespace))
    allowed = [True]  # the status patch goes through; the Lease is lost before the applies

    def may_write() -> bool:
        return allowed.pop() if allowed else False

    async def one_pass() -> PassOutcome:
        api = await api_client(cluster)
        try:
            kube = Kube(api, may_write=may_write)
            context = OperatorContext(kube=kube, analyzer=Analyzer(None), routers={"replicas": ReplicasRouter(kube)})
            return await reconcile(context, namespace, "digits")
        finally:
            await api.close()

    outcome = asyncio.run(one_pass())
    # Retried only once this replica may act again: the scheduler parks it meanwhile (scheduler docstring).
    assert outcome == PassOutcome(phase=None, next_in=FENCED_RETRY), "a fenced pass asks for a retry"
    release = cluster.get("modelrelease", "digits", namespace)
    assert release["status"]["phase"], "the pass did not reach its status write"
    selector = "modelrelease.io/release=digits"
    for kind in ("deployments", "configmaps", "services"):
        assert cluster.get(kind, namespace=namespace, selector=selector) == [], f"{kind} written without the Lease"
    assert cluster.events(namespace, involved="digits") == []


def test_a_replica_whose_lease_was_taken_writes_nothing(cluster: Cluster, namespace: str) -> None:
    async def scenario_() -> None:
        api = await api_client(cluster)
        try:
            elector = LeaderElector(api, LeaseConfig(namespace, "fence", "me", lease_duration=15, renew_period=5))
            kube = Kube(api, may_write=elector.is_leader)
            assert await elector.attempt()
            await kube.apply(_config_map(namespace, "leader"))
            await write_lease(api, namespace, "fence", holder="thief", renew_time=datetime.now(UTC))
            assert not await elector.attempt()
            with pytest.raises(LeadershipLost):
                await kube.apply(_config_map(namespace, "stale leader"))
        finally:
            await api.close()

    asyncio.run(scenario_())
    assert cluster.get("configmap", "settings", namespace)["data"] == {"value": "leader"}
