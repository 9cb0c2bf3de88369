"""devstack's side of the Prometheus Operator: what it changes in the generated configuration, and nothing else."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import pytest
import yaml

from devstack import monitoring

GENERATED = {
    "global": {
        "scrape_interval": "1s",
        "external_labels": {"prometheus": "monitoring/devstack", "prometheus_replica": "$(POD_NAME)"},
    },
    "rule_files": ["/etc/prometheus/rules/prometheus-devstack-rulefiles-0/*.yaml"],
    "scrape_configs": [
        {
            "job_name": "podMonitor/monitoring/mr-modelrelease-models/0",
            "kubernetes_sd_configs": [{"role": "pod"}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_modelrelease_io_version"], "target_label": "version"},
                {
                    "source_labels": ["__tmp_hash", "__tmp_disable_sharding"],
                    "regex": "$(SHARD);|.+;.+",
                    "action": "keep",
                },
            ],
        }
    ],
    "alerting": {"alert_relabel_configs": []},
}


def test_only_how_to_reach_the_api_server_the_reloaders_variables_and_the_rule_paths_change(tmp_path: Path) -> None:
    kubeconfig, rules = tmp_path / "kubeconfig", tmp_path / "rules"
    served = monitoring.operator_config(GENERATED, kubeconfig, rules)
    [job] = served["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "kubeconfig_file": str(kubeconfig)}]
    version, shard = job["relabel_configs"]
    assert version == GENERATED["scrape_configs"][0]["relabel_configs"][0]  # type: ignore[index]
    # Unexpanded, the sharding keep rule matches no target and every pod is dropped.
    assert shard == {"source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "0;|.+;.+", "action": "keep"}
    assert served["global"]["external_labels"]["prometheus_replica"] == "devstack"
    assert served["rule_files"] == [str(rules / "*.yaml")]
    assert "alerting" not in served
    assert GENERATED["scrape_configs"][0]["kubernetes_sd_configs"] == [{"role": "pod"}]  # type: ignore[index]


def test_the_generated_configuration_is_read_from_the_operators_secret() -> None:
    packed = base64.b64encode(gzip.compress(yaml.safe_dump(GENERATED).encode())).decode()
    assert monitoring.generated_config({"data": {"prometheus.yaml.gz": packed}}) == GENERATED


def test_rule_files_are_written_from_the_rule_config_maps(tmp_path: Path) -> None:
    maps = [{"data": {"monitoring-mr-rules-1.yaml": "groups: []\n"}}, {"data": {}}]
    [path] = monitoring.write_rule_files(maps, tmp_path / "rules")
    assert path.read_text() == "groups: []\n"


def test_the_prometheus_object_selects_everywhere_and_runs_no_pod() -> None:
    body = monitoring.prometheus_object("monitoring", {"a": "b"})
    spec = body["spec"]
    assert spec["replicas"] == 0
    assert spec["podMonitorSelector"] == spec["ruleSelector"] == {"matchLabels": {"a": "b"}}
    assert spec["podMonitorNamespaceSelector"] == spec["ruleNamespaceSelector"] == {}
    assert spec["version"] == "v3.16.0"


def test_the_operator_reaches_the_api_server_with_the_admins_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "prometheus-operator"
    binary.write_text("")
    monkeypatch.setattr(monitoring, "operator_binary", lambda: binary)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"cluster": {"server": "https://127.0.0.1:6443", "certificate-authority": "/p/ca.crt"}}],
                "users": [{"user": {"client-certificate": "/p/admin.crt", "client-key": "/p/admin.key"}}],
            }
        )
    )
    argv = monitoring.operator_argv(kubeconfig, "127.0.0.1:9999")
    assert argv[1:6] == [
        "--apiserver=https://127.0.0.1:6443",
        "--ca-file=/p/ca.crt",
        "--cert-file=/p/admin.crt",
        "--key-file=/p/admin.key",
        "--web.listen-address=127.0.0.1:9999",
    ]
