"""The chart's Grafana dashboard ConfigMap and the ServiceMonitor that feeds it, as helm renders them."""

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
