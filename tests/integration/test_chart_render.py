"""The Helm chart as rendered by the cluster's own helm: lint, schema, pod security, RBAC attributed to code.

Nothing here needs the cluster; tests/integration/test_chart_cluster.py
checks the same output against the API server.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chart_support import CHART, REPO, allows, helm, of_kind, one, refusal, render
from rbac_support import operator_needs

from modelrelease import __version__

ROUTER_RULES = {("gateway.networking.k8s.io", "httproutes"), ("networking.istio.io", "virtualservices")}
"""Granted ahead of the gatewayApi and istio routers, which read and patch these (routing issue)."""


def test_helm_lint_passes_strict() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_charts_crd_is_the_generated_one() -> None:
    for crd in (REPO / "crds").glob("*.yaml"):
        copy = CHART / "crds" / crd.name
        assert copy.exists() and copy.read_text() == crd.read_text(), f"{copy} differs from crds/: run `make crds`"
    assert {p.name for p in (CHART / "crds").iterdir()} == {p.name for p in (REPO / "crds").glob("*.yaml")}


def test_chart_app_version_is_the_operators_and_the_default_image_tag() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/modelrelease/operator:{__version__}"
    tagged = one(render({"image.tag": "0.2.0-rc1", "image.pullPolicy": "Always"}), "Deployment")
    container = tagged["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("ghcr.io/modelrelease/operator:0.2.0-rc1", "Always")


def test_the_operator_pod_runs_locked_down() -> None:
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_values_become_the_operators_flags() -> None:
    values = {
        "watchNamespaces": ["ml", "ml-b"],
        "prometheus.address": "http://prometheus.monitoring:9090",
        "prometheus.allowedAddresses": ["http://thanos.monitoring:9090"],
        "policy.allowedImages": ["tensorflow/serving:*"],
        "logFormat": "text",
        "metrics.port": 9100,
        "lease.name": "mr-lease",
        "lease.durationSeconds": 6,
    }
    args = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in (
        "--namespace=ml",
        "--namespace=ml-b",
        "--prometheus-address=http://prometheus.monitoring:9090",
        "--allowed-prometheus-address=http://thanos.monitoring:9090",
        "--allowed-image=tensorflow/serving:*",
        "--log-format=text",
        "--metrics-port=9100",
        "--lease-name=mr-lease",
        "--lease-duration=6",
    ):
        assert flag in args


def test_every_flag_the_chart_passes_is_one_modelrelease_run_accepts() -> None:
    from typer.main import get_command

    from modelrelease.cli.app import app

    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    accepted = {name for param in run.params for name in param.opts}
    values = {
        "watchNamespaces": ["ml"],
        "prometheus.address": "http://p:9090",
        "prometheus.allowedAddresses": ["http://q:9090"],
        "policy.allowedImages": ["x/*"],
        "policy.allowedServiceAccounts": ["sa"],
        "policy.allowPrivilegedPods": True,
    }
    args = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {arg.split("=", 1)[0] for arg in args} <= accepted


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"replicas": 0}, "/replicas"),
        ({"logFormat": "xml"}, "/logFormat"),
        ({"watchNamespaces": ["ml-*"]}, "/watchNamespaces/0"),
        ({"metrics.port": 80}, "/metrics/port"),
        ({"podSecurityContext.runAsNonRoot": False}, "/podSecurityContext/runAsNonRoot"),
        ({"securityContext.allowPrivilegeEscalation": True}, "/securityContext/allowPrivilegeEscalation"),
        ({"prometheus.address": "prometheus:9090"}, "/prometheus/address"),
        ({"lease.durationSeconds": 1}, "/lease/durationSeconds"),
        ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
        ({"replica": 2}, "additional properties 'replica' not allowed"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(values: dict[str, Any], named: str) -> None:
    assert named in refusal(values)


def test_a_pod_disruption_budget_only_with_several_replicas() -> None:
    assert not of_kind(render(), "PodDisruptionBudget")
    budget = one(render({"replicas": 2}), "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == one(render(), "Deployment")["spec"]["selector"]["matchLabels"]


def test_monitoring_off_renders_no_metrics_service_and_on_a_service_monitor() -> None:
    assert not of_kind(render({"metrics.service.enabled": False}), "Service")
    docs = render(
        {"metrics.serviceMonitor.enabled": True}, extra=["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]
    )
    service, monitor = one(docs, "Service"), one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_cluster_wide_install_has_one_cluster_role_and_no_namespace_roles_for_releases() -> None:
    docs = render()
    assert [r["metadata"]["name"] for r in of_kind(docs, "ClusterRole")] == ["mr-modelrelease"]
    assert [r["metadata"]["name"] for r in of_kind(docs, "Role")] == ["mr-modelrelease-leader"]


def test_namespaced_install_has_a_role_per_namespace_and_nothing_cluster_wide() -> None:
    docs = render({"watchNamespaces": ["ml", "ml-b"]})
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in of_kind(docs, "Role")}
    assert roles == {
        ("ml", "mr-modelrelease"),
        ("ml-b", "mr-modelrelease"),
        ("modelrelease-system", "mr-modelrelease-leader"),
    }
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in of_kind(docs, "RoleBinding")}
    assert bindings == roles


def _rules() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs = render()
    leader = next(r for r in of_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader"))
    return one(docs, "ClusterRole")["rules"], leader["rules"]


def test_every_api_call_in_the_operator_is_allowed_by_a_rule_of_the_chart() -> None:
    release_rules, leader_rules = _rules()
    missing = [
        need
        for need in operator_needs()
        if not allows(
            leader_rules if need.resource == "leases" else release_rules, need.group, need.resource, need.verb
        )
    ]
    assert not missing, "API calls no RBAC rule of the chart allows:\n" + "\n".join(map(str, missing))


def test_every_rule_of_the_chart_is_used_by_the_operator() -> None:
    release_rules, leader_rules = _rules()
    used = {need.key for need in operator_needs()}
    unused = [
        (group, resource, verb)
        for rule in [*release_rules, *leader_rules]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if (group, resource, verb) not in used and (group, resource) not in ROUTER_RULES
    ]
    assert not unused, f"rules no code needs (least privilege: remove them): {unused}"


def test_no_rule_grants_wildcards_secrets_or_escalation() -> None:
    release_rules, leader_rules = _rules()
    for rule in [*release_rules, *leader_rules]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert "secrets" not in rule["resources"]
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
        assert not any(r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings") for r in rule["resources"])


def test_the_leader_lease_is_renewed_only_by_its_name() -> None:
    _, leader_rules = _rules()
    named = [rule for rule in leader_rules if "update" in rule["verbs"] or "get" in rule["verbs"]]
    assert named and all(rule.get("resourceNames") == ["modelrelease-operator"] for rule in named)


def test_the_pod_monitor_gives_tf_serving_series_the_version_label_devstack_relabels_too() -> None:
    from devstack.prometheus import pod_relabel_configs

    docs = render(
        {"metrics.podMonitor.enabled": True, "watchNamespaces": ["ml"]},
        extra=["--api-versions", "monitoring.coreos.com/v1/PodMonitor"],
    )
    monitor = one(docs, "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    from modelrelease.kube.manifests import METRICS_PATH

    assert endpoint["path"] == METRICS_PATH and endpoint["port"] == "http"
    chart = {(r["sourceLabels"][0], r["targetLabel"]) for r in endpoint["relabelings"]}
    devstack = {
        (r["source_labels"][0], r["target_label"])
        for r in pod_relabel_configs()
        if r.get("target_label") in ("version", "release", "namespace", "pod")
    }
    assert chart == devstack


def test_the_readme_install_command_renders_the_chart() -> None:
    import re
    import shlex

    readme = (REPO / "README.md").read_text().replace("\\\n", " ")
    commands = [line.strip() for line in readme.splitlines() if line.strip().startswith("helm install ")]
    assert commands, "the README shows no helm install"
    for command in commands:
        words = shlex.split(command)
        assert words[3] == "charts/modelrelease", command
        args = [w for w in words[4:] if w != "--create-namespace"]
        result = helm("template", words[2], str(REPO / words[3]), *args)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    named = set(re.findall(r"\b((?:examples|charts|docs)/[\w./-]*\w)", readme))
    assert [name for name in named if not (REPO / name).exists()] == []


def test_the_argo_cd_application_values_pass_the_charts_schema(tmp_path: Any) -> None:
    app = yaml.safe_load((REPO / "examples" / "argocd" / "operator-application.yaml").read_text())
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(app["spec"]["source"]["helm"]["valuesObject"]))
    result = helm("template", "modelrelease", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stderr
