"""The chart's monitoring objects as helm renders them: the Grafana dashboard, the ServiceMonitor, the alerts."""

from __future__ import annotations

import json

from chart_support import of_kind, one, render
from dashboard_support import DASHBOARD, structural_problems


def test_no_dashboard_unless_asked_for() -> None:
    assert not [cm for cm in of_kind(render(), "ConfigMap") if cm["metadata"]["name"].endswith("-dashboard")]


def test_the_dashboard_config_map_is_labelled_for_grafanas_sidecar_and_holds_the_sound_dashboard() -> None:
    docs = render({"metrics.dashboard.enabled": True, "metrics.dashboard.annotations": {"grafana_folder": "Rollouts"}})
    config_map = one(docs, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Rollouts"}
    assert config_map["metadata"]["namespace"] == "modelrelease-system"
    dashboard = json.loads(config_map["data"]["modelrelease-rollouts.json"])
    assert dashboard == json.loads(DASHBOARD.read_text())
    assert structural_problems(dashboard) == []


def test_the_dashboard_can_go_where_the_sidecar_looks() -> None:
    docs = render({"metrics.dashboard.enabled": True, "metrics.dashboard.namespace": "monitoring"})
    assert one(docs, "ConfigMap")["metadata"]["namespace"] == "monitoring"


def test_the_service_monitor_keeps_the_release_labels_of_the_operators_series() -> None:
    docs = render(
        {"metrics.serviceMonitor.enabled": True},
        extra=["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"],
    )
    endpoint = one(docs, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["honorLabels"] is True


def test_the_prometheus_rule_alerts_on_rollbacks_waits_inconclusive_analysis_and_the_operator() -> None:
    docs = render({"metrics.prometheusRule.enabled": True, "metrics.prometheusRule.waitingFor": "2h"})
    rule = one(docs, "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "ModelReleaseRolledBack",
        "ModelReleaseWaitingTooLong",
        "ModelReleaseAnalysisInconclusive",
        "ModelReleaseOperatorDown",
        "ModelReleaseOperatorWithoutLeader",
    }
    assert alerts["ModelReleaseWaitingTooLong"]["for"] == "2h"
    # The operator's alerts select the job the ServiceMonitor scrapes: the metrics Service of this install.
    service = next(s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-metrics"))
    selector = f'job="{service["metadata"]["name"]}",namespace="modelrelease-system"'
    assert selector in alerts["ModelReleaseOperatorDown"]["expr"]
    assert selector in alerts["ModelReleaseOperatorWithoutLeader"]["expr"]


def test_no_prometheus_rule_unless_asked_for() -> None:
    assert not of_kind(render(), "PrometheusRule")
