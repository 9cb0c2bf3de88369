"""The operator applies only objects its release owns, and leaves replicas to an HPA that targets a Deployment.

Server-side apply with force takes over whatever exists under a name: a
user's own Service called like the release used to be silently rewritten
and adopted.  Now such an object is left exactly as it is, the release gets
an ``OwnershipConflict`` condition and one Warning event, and the operator
resumes once the object is gone.

An HPA targeting a version's Deployment owns its replicas: a pass must not
set them back (it used to, on every pass), and leaving the field out of the
apply must not reset it to 1 either.  devstack's controller-manager does not
run the HPA controller (devstack.cluster.CONTROLLERS), so where the HPA
would scale, the test writes the scale subresource itself, as that
controller does; the HorizontalPodAutoscaler objects are real API objects.
"""

from __future__ import annotations

from typing import Any

import pytest
from reconcile_passes import PARKED, exists, get_json, manifest, run_pass

from devstack import scenario
from devstack.scenario import Release
from devstack.testing import Cluster
from modelrelease.kube.client import FIELD_MANAGER

pytestmark = [pytest.mark.cluster]

USER_LABELS = {"app": "someone-elses"}


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Release:
    scenario.install_crd(cluster)
    return Release(cluster, namespace)


def users_object(kind: str, name: str, namespace: str) -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "labels": USER_LABELS}
    if kind == "Service":
        # Someone's own TF Serving Service under the release's name: same ports, their own pods.
        ports = [{"name": "grpc", "port": 8500, "targetPort": 8500}, {"name": "http", "port": 8501, "targetPort": 8501}]
        spec = {"selector": USER_LABELS, "ports": ports}
        return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"mine": "yes"}}
    pod = {"metadata": {"labels": USER_LABELS}, "spec": {**PARKED, "containers": [{"name": "app", "image": "nginx"}]}}
    spec = {"replicas": 1, "selector": {"matchLabels": USER_LABELS}, "template": pod}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def condition(release: Release, type_: str) -> dict[str, Any] | None:
    return next((c for c in release.status().get("conditions", []) if c["type"] == type_), None)


def warnings(release: Release, reason: str) -> list[dict[str, Any]]:
    return [e for e in release.events() if e["type"] == "Warning" and e["reason"] == reason]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Service", "digits"),
        ("Service", "digits-stable"),
        ("Deployment", "digits-v1"),
        ("ConfigMap", "digits-v1-config"),
    ],
)
def test_an_object_the_release_does_not_own_is_left_alone_with_a_condition_and_one_event(
    cluster: Cluster, release: Release, kind: str, name: str
) -> None:
    cluster.apply(users_object(kind, name, release.namespace))
    before = get_json(cluster, kind, name, release.namespace)
    release.apply(manifest(release.name, release.namespace, version=1))

    run_pass(cluster, release)
    run_pass(cluster, release)

    after = get_json(cluster, kind, name, release.namespace)
    assert after["metadata"].get("ownerReferences") is None
    assert after["metadata"]["labels"] == USER_LABELS
    assert after.get("spec", {}).get("selector", USER_LABELS) in (USER_LABELS, {"matchLabels": USER_LABELS})
    # Not the resourceVersion: the controllers write a user's Deployment's status whenever they get to it.
    assert after["metadata"].get("generation") == before["metadata"].get("generation")
    assert after.get("spec") == before.get("spec") and after.get("data") == before.get("data")
    assert all(m["manager"] != FIELD_MANAGER for m in after["metadata"]["managedFields"])
    conflict = condition(release, "OwnershipConflict")
    assert conflict is not None and conflict["status"] == "True", release.status().get("conditions")
    assert f"{kind} {release.namespace}/{name}" in conflict["message"]
    assert len(warnings(release, "OwnershipConflict")) == 1

    cluster.kubectl("delete", kind.lower(), name, "-n", release.namespace, "--wait=true")
    run_pass(cluster, release)
    conflict = condition(release, "OwnershipConflict")
    assert conflict is not None and conflict["status"] == "False"
    owned = get_json(cluster, kind, name, release.namespace)
    assert [r["uid"] for r in owned["metadata"]["ownerReferences"]] == [release.get()["metadata"]["uid"]]


def autoscaler(namespace: str, target: str, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    }


def replicas(cluster: Cluster, namespace: str, name: str) -> int:
    return int(get_json(cluster, "deployment", name, namespace)["spec"]["replicas"])


def operator_applies_replicas(cluster: Cluster, namespace: str, name: str) -> bool:
    for entry in get_json(cluster, "deployment", name, namespace)["metadata"]["managedFields"]:
        if entry["manager"] == FIELD_MANAGER and entry["operation"] == "Apply":
            return "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
    return False


def test_a_pass_leaves_the_replicas_an_hpa_set(cluster: Cluster, release: Release) -> None:
    release.apply(manifest(release.name, release.namespace, version=1, replicas=2))
    run_pass(cluster, release)
    assert replicas(cluster, release.namespace, "digits-v1") == 2
    cluster.apply(autoscaler(release.namespace, "digits-v1", minimum=3, maximum=4))
    # What the HPA controller does for a Deployment below minReplicas: PUT .../deployments/digits-v1/scale.
    cluster.kubectl("scale", "deployment", "digits-v1", "--replicas=3", "-n", release.namespace)
    assert replicas(cluster, release.namespace, "digits-v1") == 3

    run_pass(cluster, release)

    assert replicas(cluster, release.namespace, "digits-v1") == 3
    assert not operator_applies_replicas(cluster, release.namespace, "digits-v1")


def test_handing_replicas_to_an_hpa_that_agrees_does_not_reset_them(cluster: Cluster, release: Release) -> None:
    release.apply(manifest(release.name, release.namespace, version=1, replicas=2))
    run_pass(cluster, release)
    assert operator_applies_replicas(cluster, release.namespace, "digits-v1")
    # The HPA's range holds the current count, so it never writes replicas itself.
    cluster.apply(autoscaler(release.namespace, "digits-v1", minimum=2, maximum=4))

    run_pass(cluster, release)
    run_pass(cluster, release)

    assert replicas(cluster, release.namespace, "digits-v1") == 2
    assert not operator_applies_replicas(cluster, release.namespace, "digits-v1")


def test_without_an_hpa_the_operator_keeps_sizing_the_deployment(cluster: Cluster, release: Release) -> None:
    release.apply(manifest(release.name, release.namespace, version=1, replicas=2))
    run_pass(cluster, release)
    cluster.kubectl("scale", "deployment", "digits-v1", "--replicas=5", "-n", release.namespace)
    run_pass(cluster, release)
    assert replicas(cluster, release.namespace, "digits-v1") == 2
    assert exists(cluster, "service", "digits", release.namespace)
