"""The operator's release policy as a pure function: which fields it refuses, with which rule, and what it lets by."""

from __future__ import annotations

from typing import Any

import pytest

from modelrelease.api import parse_spec
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.policy import (
    POLICY_VIOLATION,
    PROMETHEUS_NOT_ALLOWED,
    PrometheusAllowList,
    ReleasePolicy,
    image_allowed,
    normalize_address,
    normalize_image,
)

OPERATOR_PROMETHEUS = "http://prometheus.monitoring:9090"


def release(
    pod_template: dict[str, Any] | None = None, prometheus: str | None = None, **serving: Any
) -> ModelReleaseSpec:
    manifest: dict[str, Any] = {
        "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
        "serving": {"image": "tensorflow/serving:2.18.0", "podTemplate": pod_template or {}, **serving},
    }
    if prometheus is not None:
        manifest["analysis"] = {"prometheus": {"address": prometheus}}
    return parse_spec(manifest)


def default_policy(**changes: Any) -> ReleasePolicy:
    return ReleasePolicy(prometheus=PrometheusAllowList.of(OPERATOR_PROMETHEUS), **changes)


def fields_and_rules(spec: ModelReleaseSpec, policy: ReleasePolicy | None = None) -> list[tuple[str, str]]:
    return [(v.field, v.rule) for v in (policy or default_policy()).violations(spec)]


# --- the default policy


def test_an_ordinary_release_breaks_no_rule() -> None:
    spec = release(
        {
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "sidecar", "image": "busybox", "securityContext": {"privileged": False}}],
            "serviceAccountName": "default",
        },
        args=["--enable_batching"],
    )
    assert default_policy().violations(spec) == []
    assert default_policy().refusal(spec) is None


@pytest.mark.parametrize(
    ("pod_template", "field", "rule"),
    [
        ({"hostNetwork": True}, "spec.serving.podTemplate.hostNetwork", "host-namespaces"),
        ({"hostPID": True}, "spec.serving.podTemplate.hostPID", "host-namespaces"),
        ({"hostIPC": True}, "spec.serving.podTemplate.hostIPC", "host-namespaces"),
        (
            {"volumes": [{"name": "ok", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}]},
            "spec.serving.podTemplate.volumes[1].hostPath",
            "host-path",
        ),
        (
            {"containers": [{"name": "x", "image": "i", "securityContext": {"privileged": True}}]},
            "spec.serving.podTemplate.containers[0].securityContext.privileged",
            "privileged",
        ),
        (
            {
                "initContainers": [
                    {"name": "x", "image": "i", "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}
                ]
            },
            "spec.serving.podTemplate.initContainers[0].securityContext.capabilities.add",
            "added-capabilities",
        ),
        (
            {"containers": [{"name": "x", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}]}]},
            "spec.serving.podTemplate.containers[0].ports[0].hostPort",
            "host-ports",
        ),
        (
            {"containers": [{"name": "x", "image": "i", "securityContext": {"procMount": "Unmasked"}}]},
            "spec.serving.podTemplate.containers[0].securityContext.procMount",
            "proc-mount",
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            "spec.serving.podTemplate.securityContext.seccompProfile.type",
            "security-profiles",
        ),
        (
            {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}},
            "spec.serving.podTemplate.securityContext.seLinuxOptions.type",
            "security-profiles",
        ),
        (
            {"securityContext": {"windowsOptions": {"hostProcess": True}}},
            "spec.serving.podTemplate.securityContext.windowsOptions.hostProcess",
            "host-namespaces",
        ),
        (
            {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
            "spec.serving.podTemplate.securityContext.sysctls[0].name",
            "sysctls",
        ),
        (
            {"serviceAccountName": "cluster-admin"},
            "spec.serving.podTemplate.serviceAccountName",
            "allowed-service-accounts",
        ),
        ({"serviceAccount": "builder"}, "spec.serving.podTemplate.serviceAccount", "allowed-service-accounts"),
    ],
)
def test_default_policy_refuses_each_privileged_field_naming_it_and_the_rule(
    pod_template: dict[str, Any], field: str, rule: str
) -> None:
    assert fields_and_rules(release(pod_template)) == [(field, rule)]


def test_a_privileged_field_given_as_a_string_is_refused_too() -> None:
    """The API server would refuse the type later; the policy never lets an unusual spelling through."""
    assert fields_and_rules(release({"hostNetwork": "true"})) == [
        ("spec.serving.podTemplate.hostNetwork", "host-namespaces")
    ]


def test_harmless_defaults_written_out_are_not_violations() -> None:
    spec = release(
        {
            "hostNetwork": False,
            "hostPID": False,
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]},
            "containers": [
                {
                    "name": "x",
                    "image": "i",
                    "ports": [{"containerPort": 80, "hostPort": 0}],
                    "securityContext": {"capabilities": {"add": [], "drop": ["ALL"]}, "procMount": "Default"},
                }
            ],
        }
    )
    assert fields_and_rules(spec) == []


def test_refusal_names_every_violation_and_the_first_ones_reason() -> None:
    refusal = default_policy().refusal(release({"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {}}]}))
    assert refusal is not None
    assert refusal.reason == POLICY_VIOLATION
    assert (
        "spec.serving.podTemplate.hostNetwork: hostNetwork is not allowed (operator policy rule host-namespaces)"
        in (refusal.message)
    )
    assert "spec.serving.podTemplate.volumes[0].hostPath" in refusal.message


def test_malformed_pod_template_shapes_do_not_crash_the_check() -> None:
    spec = release({"volumes": "x", "containers": [None, 3, {"securityContext": "y"}], "securityContext": []})
    assert fields_and_rules(spec) == []


# --- the operator's switches


def test_allow_privileged_pods_lets_host_fields_through_but_still_checks_service_accounts() -> None:
    policy = default_policy(allow_privileged_pods=True)
    spec = release(
        {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {"path": "/dev"}}], "serviceAccount": "x"}
    )
    assert fields_and_rules(spec, policy) == [("spec.serving.podTemplate.serviceAccount", "allowed-service-accounts")]


def test_an_allowed_service_account_may_be_named() -> None:
    policy = default_policy(service_accounts=("default", "model-runner"))
    assert fields_and_rules(release({"serviceAccountName": "model-runner"}), policy) == []


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("tensorflow/serving:2.18.0", True),
        ("docker.io/tensorflow/serving:2.18.0-gpu", True),
        ("registry.example.com/ml/serving@sha256:abc", True),
        ("tensorflow/serving-evil:1", False),
        ("evil.example.com/tensorflow/serving:2.18.0", False),
        ("busybox", False),
    ],
)
def test_image_patterns_match_the_image_as_written_or_fully_qualified(image: str, allowed: bool) -> None:
    patterns = ("docker.io/tensorflow/serving:*", "registry.example.com/ml/*")
    assert image_allowed(image, patterns) is allowed


def test_no_image_patterns_allow_any_image() -> None:
    assert image_allowed("anything.example/at/all:latest", ())


def test_normalized_images_are_what_a_runtime_pulls() -> None:
    assert normalize_image("busybox") == "docker.io/library/busybox"
    assert normalize_image("tensorflow/serving:2") == "docker.io/tensorflow/serving:2"
    assert normalize_image("localhost/x") == "localhost/x"
    assert normalize_image("reg:5000/x") == "reg:5000/x"


def test_image_policy_covers_the_serving_image_and_containers_the_template_adds() -> None:
    policy = default_policy(images=("tensorflow/serving:*",))
    spec = release({"containers": [{"name": "miner", "image": "evil/miner:1"}]}, image="tensorflow/serving:2.18.0")
    assert fields_and_rules(spec, policy) == [("spec.serving.podTemplate.containers[0].image", "allowed-images")]
    other = release(image="evil/serving:1")
    assert fields_and_rules(other, policy) == [("spec.serving.image", "allowed-images")]


# --- Prometheus addresses


def test_a_release_without_its_own_prometheus_uses_the_operators_and_is_allowed() -> None:
    assert fields_and_rules(release()) == []
    assert fields_and_rules(release(), ReleasePolicy()) == []


@pytest.mark.parametrize(
    "address",
    ["http://prometheus.monitoring:9090", "http://Prometheus.Monitoring:9090/", "http://prometheus.monitoring:9090//"],
)
def test_the_operators_own_prometheus_may_be_named_in_any_spelling(address: str) -> None:
    assert fields_and_rules(release(prometheus=address)) == []


@pytest.mark.parametrize(
    "address",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://prometheus.monitoring:9091",
        "https://prometheus.monitoring:9090",
        "http://prometheus.monitoring:9090/../admin",
        "http://prometheus.monitoring:9090.evil.example",
        "http://prometheus.monitoring:9090@evil.example",
        "http://evil.example@prometheus.monitoring:9090",
        "http://prometheus.monitoring:9090/api?target=x",
        "http://prometheus.monitoring:9090#x",
        "http://prometheus.monitoring:notaport",
    ],
)
def test_any_other_prometheus_is_refused_with_its_own_reason(address: str) -> None:
    refusal = default_policy().refusal(release(prometheus=address))
    assert refusal is not None
    assert refusal.reason == PROMETHEUS_NOT_ALLOWED
    assert "spec.analysis.prometheus.address" in refusal.message
    assert "--allowed-prometheus-address" in refusal.message


def test_an_operator_without_a_prometheus_allows_no_release_address() -> None:
    refused = ReleasePolicy().refusal(release(prometheus=OPERATOR_PROMETHEUS))
    assert refused is not None and "allowed: none" in refused.message


def test_listed_addresses_are_allowed_exactly() -> None:
    allowed = PrometheusAllowList.of(OPERATOR_PROMETHEUS, ["https://thanos.example/tenant-a"])
    assert allowed.allows("https://thanos.example:443/tenant-a/")
    assert not allowed.allows("https://thanos.example/tenant-a/sub")
    assert not allowed.allows("https://thanos.example/tenant-b")


def test_normalized_addresses_keep_what_changes_the_destination() -> None:
    assert normalize_address("HTTP://Prom:80/") == "http://prom"
    assert normalize_address("http://u:p@prom:9090") == "http://u:p@prom:9090"
    assert normalize_address("http://[::1]:9090/") == "http://[::1]:9090"
    assert normalize_address("ftp://prom") is None
    assert normalize_address("http://prom:99999") is None
