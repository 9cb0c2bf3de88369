"""The operator's release policy on devstack: a release that breaks it gets a condition and an event, and nothing else.

The module's operator runs with ``--allowed-image=tensorflow/serving:*`` and
``--allowed-service-account=model-runner`` on top of the defaults (no
privileged pod fields; only the operator's own Prometheus).  A refused
release must get ``Valid=False`` naming the field and the rule, a Warning
event, no Deployment, ConfigMap or Service, and no request to the address it
names; fixing the spec must let it through, so "nothing created" is not
just an operator that creates nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rollout_support import Releases

from devstack.testing import recording_prometheus, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

OPERATOR_FLAGS = ("--allowed-image=tensorflow/serving:*", "--allowed-service-account=model-runner")
TIMEOUT = 60.0


def _manifest(releases: Releases, **serving: Any) -> dict[str, Any]:
    manifest = releases.manifest(1)
    manifest["spec"]["serving"].update({"replicas": 1, **serving})
    return manifest


def _refused(releases: Releases, reason: str) -> dict[str, Any]:
    """The release's Valid condition once it is False with ``reason``, and the Warning event that came with it."""

    def condition() -> dict[str, Any] | None:
        for found in releases.status().get("conditions") or []:
            if found.get("type") == "Valid" and found.get("status") == "False" and found.get("reason") == reason:
                return dict(found)
        return None

    found = wait_for(condition, TIMEOUT, interval=0.5, message=f"Valid=False {reason}")
    wait_for(lambda: reason in releases.event_reasons(), TIMEOUT, interval=0.5, message=f"a {reason} event")
    return found


def _owned_objects(releases: Releases) -> list[str]:
    selector = f"modelrelease.io/release={releases.name}"
    result = releases.cluster.kubectl(
        "get", "deployments,configmaps,services", "-n", releases.namespace, "-l", selector, "-o", "name"
    )
    return result.stdout.split()


def test_privileged_pod_fields_are_refused_with_a_condition_and_nothing_is_created(releases: Releases) -> None:
    pod_template = {"hostNetwork": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
    releases.apply(_manifest(releases, podTemplate=pod_template))

    condition = _refused(releases, "PolicyViolation")
    assert "spec.serving.podTemplate.hostNetwork" in condition["message"]
    assert "rule host-namespaces" in condition["message"]
    assert "spec.serving.podTemplate.volumes[0].hostPath" in condition["message"]
    assert _owned_objects(releases) == []
    assert releases.deployment(1) is None

    releases.patch_spec({"serving": {"podTemplate": {"hostNetwork": None, "volumes": None}}})
    deployment = wait_for(lambda: releases.deployment(1), TIMEOUT, interval=0.5, message="digits-v1 once fixed")
    assert "hostNetwork" not in deployment["spec"]["template"]["spec"]


def test_an_image_outside_the_allowed_patterns_is_refused_naming_the_field(releases: Releases) -> None:
    releases.apply(_manifest(releases, image="evil.example.com/miner:1"))

    condition = _refused(releases, "PolicyViolation")
    assert "spec.serving.image" in condition["message"]
    assert "rule allowed-images" in condition["message"]
    assert _owned_objects(releases) == []


def test_an_allowed_service_account_is_used_and_another_is_refused(releases: Releases) -> None:
    releases.apply(_manifest(releases, podTemplate={"serviceAccountName": "operator-admin"}))
    condition = _refused(releases, "PolicyViolation")
    assert "spec.serving.podTemplate.serviceAccountName" in condition["message"]
    assert _owned_objects(releases) == []

    releases.patch_spec({"serving": {"podTemplate": {"serviceAccountName": "model-runner"}}})
    deployment = wait_for(lambda: releases.deployment(1), TIMEOUT, interval=0.5, message="digits-v1 as model-runner")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "model-runner"


def test_a_prometheus_the_operator_did_not_allow_is_refused_and_never_queried(releases: Releases) -> None:
    with recording_prometheus() as listener:
        manifest = _manifest(releases)
        manifest["spec"]["analysis"]["prometheus"] = {"address": listener.address}
        releases.apply(manifest)

        condition = _refused(releases, "PrometheusNotAllowed")
        assert "spec.analysis.prometheus.address" in condition["message"]
        assert listener.address in condition["message"]
        assert _owned_objects(releases) == []
        # A spec change is a new pass: still refused, still nothing sent.
        releases.patch_spec({"analysis": {"interval": "1s"}})
        wait_for(
            lambda: releases.status().get("observedGeneration") == releases.get()["metadata"]["generation"],
            TIMEOUT,
            interval=0.5,
            message="the changed release judged again",
        )
        assert listener.paths == [], json.dumps(listener.paths)
