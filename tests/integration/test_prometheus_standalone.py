"""Prometheus as devstack runs it, without a cluster: the build is Prometheus 3, the file_sd job picks up an exporter."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from devstack import prometheus
from devstack.testing import wait_for

pytestmark = pytest.mark.skipif(prometheus.find_binary() is None, reason="prometheus not installed (make setup)")


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    state_dir = tmp_path_factory.mktemp("state")
    with prometheus.serve(state_dir) as url:
        yield url, state_dir


def test_the_built_prometheus_names_its_3_x_version() -> None:
    binary = prometheus.find_binary()
    assert binary is not None
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30)
    assert re.search(r"prometheus, version 3\.\d+\.\d+ ", result.stdout + result.stderr), result


def test_registered_exporter_is_scraped_with_its_labels_within_seconds(prometheus_url: tuple[str, Path]) -> None:
    url, state_dir = prometheus_url
    registry = CollectorRegistry()
    counter = Counter("devstack_probe", "a probe counter", ["version"], registry=registry)
    counter.labels(version="7").inc(3)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        prometheus.register_target(state_dir, "probe", address, {"component": "exporter"})
        series = wait_for(
            lambda: prometheus.query(url, 'devstack_probe_total{job="probe"}'),
            timeout=15,
            message="the registered exporter's counter did not appear in Prometheus within 15 s",
        )
        print(f"registered target scraped {time.monotonic() - started:.1f} s after registration")
        labels = series[0]["metric"]
        assert labels["version"] == "7"
        assert labels["component"] == "exporter"
        assert labels["instance"] == address
        assert float(series[0]["value"][1]) == 3.0
    finally:
        prometheus.unregister_target(state_dir, "probe", address)
        server.shutdown()
        thread.join(timeout=5)


def test_unregistered_target_leaves_the_active_targets(prometheus_url: tuple[str, Path]) -> None:
    url, state_dir = prometheus_url
    address = prometheus.free_address()
    prometheus.register_target(state_dir, "ephemeral", address)
    wait_for(
        lambda: [t for t in prometheus.targets(url) if t["labels"].get("job") == "ephemeral"],
        timeout=10,
        message="registered target never became active",
    )
    prometheus.unregister_target(state_dir, "ephemeral", address)
    wait_for(
        lambda: not [t for t in prometheus.targets(url) if t["labels"].get("job") == "ephemeral"] or None,
        timeout=10,
        message="unregistered target is still active",
    )


def test_config_keeps_only_annotated_running_pods_and_copies_release_labels(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    config = prometheus.config(tmp_path, kubeconfig)
    pods = next(job for job in config["scrape_configs"] if job["job_name"] == prometheus.POD_SCRAPE_JOB)
    assert pods["kubernetes_sd_configs"] == [{"role": "pod", "kubeconfig_file": str(kubeconfig)}]
    targets = {rule.get("target_label") for rule in pods["relabel_configs"]}
    assert {"version", "release", "namespace", "pod", "__address__", "__metrics_path__"} <= targets
    keep = [rule["source_labels"][0] for rule in pods["relabel_configs"] if rule.get("action") == "keep"]
    assert "__meta_kubernetes_pod_annotation_prometheus_io_scrape" in keep
    assert config["global"]["scrape_interval"] == "1s"
