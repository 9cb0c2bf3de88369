"""The chart's PodMonitor and PrometheusRule taking effect through the real Prometheus Operator on devstack.

The Prometheus Operator (v0.85.0, built by ``make setup``) runs as a devstack
process against the local API server with the CRDs its Prometheus controller
watches installed (``CRD_PLURALS``; it leaves the other kinds' controllers off
without theirs, as it would in a cluster that lacks them).  The chart's
PodMonitor and PrometheusRule, rendered by helm, are applied, with a
Prometheus object that selects them.  Its StatefulSet has 0 replicas (the pod
runner cannot run the Prometheus image), but the Operator does everything
else it does for a running one: it selects the monitors and rules and writes
the Prometheus configuration it generated into the Secret
``prometheus-devstack`` and the rule files into a ConfigMap.  devstack's own
Prometheus binary runs on that configuration, changed only where it is not a
pod (``monitoring.operator_config``: the kubeconfig to reach the API server,
and the ``$(SHARD)`` and ``$(POD_NAME)`` its config reloader would expand).
So the discovery and relabelling that run are the ones users get.

One rollout (a pod per version, v2 held in its canary stage by an approval
gate) then shows it works end to end: the model pods of both versions
are discovered with the PodMonitor's ``version``, ``release``, ``namespace``
and ``pod`` labels, the built-in health template returns data for each
version, and after v2's analysis fails and rolls it back the chart's ModelReleaseRolledBack alert
fires from the rule file the Operator generated.  The operator process is
not a pod with a Service here, so it is scraped as a static target (what the
chart's ServiceMonitor would select).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from chart_support import render
from rollout_support import OperatorProcess, Releases

from devstack import monitoring, prometheus
from devstack.testing import Cluster, wait_for
from modelrelease.analysis.context import TemplateValues
from modelrelease.analysis.rendering import render as render_query
from modelrelease.analysis.templates import plan_for
from modelrelease.api.spec import MetricSpec

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

CHART_RELEASE = "mr"
SELECTED = {"devstack.modelrelease.io/monitoring": "e2e"}
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 50, "duration": "6s", "approval": True},
    {"name": "full", "weight": 100},
]


@dataclass
class Monitoring:
    namespace: str
    url: str
    config: dict[str, Any]
    rule_files: list[Path]

    @property
    def pod_job(self) -> str:
        return f"podMonitor/{self.namespace}/{CHART_RELEASE}-modelrelease-models/0"


# What the Operator's Prometheus controller watches.  It starts the controllers of other kinds (Alertmanager,
# ThanosRuler, PrometheusAgent, ScrapeConfig) only when their CRDs exist; those CRDs are most of the 4 MB of
# schemas and of the time applying them takes (about 4 s of 5 on devstack).
CRD_PLURALS = ("prometheuses", "podmonitors", "servicemonitors", "prometheusrules", "probes")


def _crds_installed(cluster: Cluster) -> None:
    files = [
        f"--filename={monitoring.operator_crds() / f'monitoring.coreos.com_{plural}.yaml'}" for plural in CRD_PLURALS
    ]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files)
    names = {f"{plural}.monitoring.coreos.com" for plural in CRD_PLURALS}

    def established() -> bool:
        # Polled, not `kubectl wait`: that fails ("status.conditions accessor error") on a CRD with no conditions yet.
        found = {
            crd["metadata"]["name"]
            for crd in cluster.get("customresourcedefinitions")
            if any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (crd.get("status") or {}).get("conditions") or []
            )
        }
        return names <= found

    wait_for(established, 60, interval=0.2, message="the Prometheus Operator's CRDs established")


@pytest.fixture(scope="module")
def prometheus_operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Operator as a devstack process (its log is the returned path); its CRDs installed first."""
    assert monitoring.operator_binary().exists(), "run `make setup`: it builds the Prometheus Operator"
    _crds_installed(cluster)
    log_path = tmp_path_factory.mktemp("prometheus-operator") / "operator.log"
    argv = monitoring.operator_argv(cluster.kubeconfig, prometheus.free_address())
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ)
    try:
        yield log_path
    finally:
        prometheus.terminate(process)


def _generated(cluster: Cluster, namespace: str, log_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Secret with the generated configuration and the rule ConfigMaps, once the Operator wrote them."""
    name = f"prometheus-{monitoring.PROMETHEUS_CR}"

    def written() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        secrets = [s for s in cluster.get("secrets", namespace=namespace) if s["metadata"]["name"] == name]
        rules = [
            c
            for c in cluster.get("configmaps", namespace=namespace)
            if c["metadata"]["name"].startswith(f"{name}-rulefiles-") and c.get("data")
        ]
        if secrets and (secrets[0].get("data") or {}).get("prometheus.yaml.gz") and rules:
            return secrets[0], rules
        return None

    try:
        return wait_for(written, 90, interval=1.0, message="the Operator's generated configuration and rules")
    except TimeoutError:
        raise AssertionError(log_path.read_text(errors="replace")[-3000:]) from None


@pytest.fixture(scope="module")
def operated(
    cluster: Cluster,
    prometheus_operator: Path,
    operator_process: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Monitoring]:
    """devstack's Prometheus on the configuration the Operator generated from the chart's objects."""
    namespace = f"monitoring-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", namespace)
    values = {
        "metrics.podMonitor.enabled": True,
        "metrics.podMonitor.interval": "1s",
        "metrics.podMonitor.labels": SELECTED,
        "metrics.prometheusRule.enabled": True,
        "metrics.prometheusRule.labels": SELECTED,
    }
    chosen = [d for d in render(values, release=CHART_RELEASE) if d["kind"] in ("PodMonitor", "PrometheusRule")]
    for document in chosen:
        document["metadata"]["namespace"] = namespace
    cluster.apply(chosen)
    cluster.apply(monitoring.prometheus_object(namespace, SELECTED))
    try:
        secret, rule_maps = _generated(cluster, namespace, prometheus_operator)
        directory = tmp_path_factory.mktemp("operated-prometheus")
        rules = directory / "rules"
        config = monitoring.operator_config(monitoring.generated_config(secret), cluster.kubeconfig, rules)
        rule_files = monitoring.write_rule_files(rule_maps, rules)
        address = operator_process.metrics_url.removeprefix("http://")
        served = {
            **config,
            "scrape_configs": [
                *config["scrape_configs"],
                {"job_name": f"{CHART_RELEASE}-modelrelease-metrics", "static_configs": [{"targets": [address]}]},
            ],
        }
        with monitoring.serve_config(served, directory) as url:
            yield Monitoring(namespace, url, config, rule_files)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_the_operator_generates_the_podmonitors_relabelling(operated: Monitoring) -> None:
    [job] = [j for j in operated.config["scrape_configs"] if j["job_name"] == operated.pod_job]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    relabel = {(tuple(r.get("source_labels") or ()), r.get("target_label")) for r in job["relabel_configs"]}
    for source, target in [
        ("__meta_kubernetes_pod_label_modelrelease_io_version", "version"),
        ("__meta_kubernetes_pod_label_modelrelease_io_release", "release"),
        ("__meta_kubernetes_namespace", "namespace"),
        ("__meta_kubernetes_pod_name", "pod"),
    ]:
        assert ((source,), target) in relabel, f"{source} -> {target} missing from the generated relabelling"
    assert [p.suffix for p in operated.rule_files] == [".yaml"]
    assert "ModelReleaseRolledBack" in operated.rule_files[0].read_text()


def _versions_scraped(url: str, job: str, namespace: str) -> dict[str, dict[str, str]]:
    found = {}
    for target in prometheus.targets(url):
        labels = target["labels"]
        # The scrape pool is the generated job's name; its `job` label is the PodMonitor's namespace/name.
        if target.get("scrapePool") == job and labels.get("namespace") == namespace and target.get("health") == "up":
            found[labels["version"]] = labels
    return found


def _targets_report(url: str) -> str:
    """Every active and dropped target with its discovered labels: what to read when discovery finds nothing."""
    body = httpx.get(f"{url}/api/v1/targets", timeout=5.0, trust_env=False).json()["data"]
    return json.dumps({key: body[key] for key in ("activeTargets", "droppedTargets")}, indent=1)[:20000]


def _requests(url: str, releases: Releases, model: str, version: int) -> float | None:
    plan = plan_for(MetricSpec.model_validate({"name": "errors", "template": "tfserving-error-rate", "max": 0.1}))
    assert plan.denominator is not None
    values = TemplateValues(model, version, releases.namespace, releases.name, "1m")
    return prometheus.query_value(url, render_query(plan.denominator, values))


def test_model_pods_are_discovered_with_the_podmonitors_labels_and_the_rollback_alert_fires(
    operated: Monitoring, releases: Releases, traffic: Any
) -> None:
    model = f"digits-{releases.namespace[-5:]}"
    manifest = releases.manifest(1, stages=STAGES)
    manifest["spec"]["model"]["name"] = model
    manifest["spec"]["serving"]["replicas"] = 1  # a pod per version is all discovery needs; each pod costs seconds
    releases.apply(manifest)
    # Traffic starts while v1's pods start: its wait to be scraped overlaps theirs (no endpoint yet: UNAVAILABLE).
    with traffic(rate=30, model=model) as generator:
        releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 1)
        manifest["spec"]["model"]["version"] = 2
        releases.apply(manifest)
        # Both versions serve from the canary stage on; its approval gate keeps v2 there until it is rolled back.
        wait_for(
            lambda: (
                (s := releases.status()).get("phase") in ("Progressing", "AwaitingApproval")
                and (s.get("stage") or {}).get("name") == "canary"
            ),
            240,
            interval=0.5,
            message="v2 in its canary stage",
        )
        try:
            scraped = wait_for(
                lambda: (
                    (found := _versions_scraped(operated.url, operated.pod_job, releases.namespace)).keys()
                    >= {"1", "2"}
                    and found
                ),
                60,
                message="both versions' pods scraped through the PodMonitor's job",
            )
        except TimeoutError as error:
            raise AssertionError(f"{error}\n/api/v1/targets:\n{_targets_report(operated.url)}") from None
        for version in ("1", "2"):
            labels = scraped[version]
            assert labels["release"] == releases.name and labels["pod"].startswith(f"{releases.name}-v{version}-")
        counts = wait_for(
            lambda: (c := {v: _requests(operated.url, releases, model, v) for v in (1, 2)}) and all(c.values()) and c,
            60,
            message="the tfserving-error-rate template's request counts per version",
        )
        assert all(count is not None and count > 0 for count in counts.values()), counts
        generator.answer_wrongly("2")
        releases.wait_phase("RolledBack", 120)
        releases.wait_events("AnalysisFailed", timeout=10)  # rolled back by its analysis, as a failing canary is

    firing = wait_for(
        lambda: prometheus.query(
            operated.url,
            f'ALERTS{{alertname="ModelReleaseRolledBack",alertstate="firing",namespace="{releases.namespace}"}}',
        ),
        120,
        interval=1.0,
        message="ModelReleaseRolledBack firing from the Operator's rule file",
    )
    assert firing[0]["metric"]["release"] == releases.name
