"""Prometheus for devstack: Prometheus 3 built from its Go module, our own config, started by ``devstack up``.

Why a generated config and a real Prometheus: the operator under test talks
to a real Prometheus that discovers the model pods through the local API
server with ``kubernetes_sd_configs`` (role pod), exactly as a cluster's
Prometheus does, and relabels them as the Helm chart's PodMonitor does
(``version`` and ``release`` from the pod labels ``modelrelease.io/version``
and ``modelrelease.io/release``, plus ``namespace`` and ``pod``): the labels
every built-in analysis template queries by.  Static targets (the traffic
generator, an operator's metrics port) are file_sd JSON files, so
registering one never needs a restart or a reload.

The binary is built and cached by ``make setup`` (``devstack.monitoring``);
Debian's package (2.42, without the Kubernetes discovery plugin) is no
longer used.  Its web UI answers 500 (the UI's assets are not in the Go
module); the HTTP API works.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

SCRAPE_INTERVAL = "1s"
# Short: devstack data is only ever looked at while a test or demo runs.
RETENTION = "2h"
POD_SCRAPE_JOB = "kubernetes-pods"
STATIC_JOB = "devstack-static"


class PrometheusNotInstalled(RuntimeError):
    """Prometheus has not been built yet."""


def find_binary() -> Path | None:
    """The Prometheus ``make setup`` built (devstack.monitoring), or None before it has."""
    from devstack import monitoring

    binary = monitoring.prometheus_binary()
    return binary if binary.exists() else None


def prometheus_dir(state_dir: Path) -> Path:
    return state_dir / "prometheus"


def targets_dir(state_dir: Path) -> Path:
    return prometheus_dir(state_dir) / "targets"


def rules_dir(state_dir: Path) -> Path:
    return prometheus_dir(state_dir) / "rules"


def _sanitize(name: str) -> str:
    """Prometheus' SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _label_meta(label: str) -> str:
    """The ``__meta_kubernetes_pod_label_*`` name Prometheus gives a pod label."""
    return "__meta_kubernetes_pod_label_" + _sanitize(label)


def _annotation_meta(annotation: str) -> str:
    return "__meta_kubernetes_pod_annotation_" + _sanitize(annotation)


def pod_relabel_configs() -> list[dict[str, Any]]:
    """The relabelling the Helm chart's scrape config applies too: opt-in by annotation, version from the pod."""
    return [
        {"source_labels": [_annotation_meta("prometheus.io/scrape")], "action": "keep", "regex": "true"},
        # kwok's fake pods run no process: scraping them every second only fails (devstack.kwok; a scale
        # test's per-version counters come from devstack.fake_serving's exporter instead).
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "action": "drop", "regex": "kwok-node-.*"},
        # A pod that is not running has no process to scrape (and often no IP).
        {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
        {
            "source_labels": [_annotation_meta("prometheus.io/path")],
            "action": "replace",
            "regex": "(.+)",
            "target_label": "__metrics_path__",
        },
        {
            "source_labels": ["__address__", _annotation_meta("prometheus.io/port")],
            "action": "replace",
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {"source_labels": [_label_meta("modelrelease.io/version")], "target_label": "version"},
        {"source_labels": [_label_meta("modelrelease.io/release")], "target_label": "release"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]


def config(state_dir: Path, kubeconfig: Path | None) -> dict[str, Any]:
    """Without a kubeconfig only the static (file_sd) job is configured: Prometheus without a cluster.

    Rule files in ``rules_dir`` (alerting and recording rules, e.g. the chart's
    PrometheusRule groups) are loaded at start and on ``reload``.  Static
    targets keep the labels their series carry (``honor_labels``, as the
    chart's ServiceMonitor has it), so the operator's per-release
    ``namespace`` is not renamed by a target's own ``namespace`` label.
    """
    scrape_configs: list[dict[str, Any]] = []
    if kubeconfig is not None:
        scrape_configs.append(
            {
                "job_name": POD_SCRAPE_JOB,
                "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(kubeconfig)}],
                "relabel_configs": pod_relabel_configs(),
            }
        )
    scrape_configs.append(
        {
            "job_name": STATIC_JOB,
            "honor_labels": True,
            "file_sd_configs": [{"files": [str(targets_dir(state_dir) / "*.json")], "refresh_interval": "1s"}],
        }
    )
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": [str(rules_dir(state_dir) / "*.yml")],
        "scrape_configs": scrape_configs,
    }


def write_config(state_dir: Path, kubeconfig: Path | None) -> Path:
    directory = prometheus_dir(state_dir)
    targets_dir(state_dir).mkdir(parents=True, exist_ok=True)
    rules_dir(state_dir).mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    _write_atomically(path, yaml.safe_dump(config(state_dir, kubeconfig), sort_keys=False))
    return path


def command(state_dir: Path, kubeconfig: Path | None, listen: str) -> list[str]:
    """Write the config under ``state_dir/prometheus`` and return the argv that runs Prometheus on it."""
    binary = find_binary()
    if binary is None:
        raise PrometheusNotInstalled("prometheus is not built: run `make setup` (python -m devstack setup)")
    config_path = write_config(state_dir, kubeconfig)
    data = prometheus_dir(state_dir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    return [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]


def _target_file_name(job: str, address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job}-{address}") + ".json"


def register_target(state_dir: Path, job: str, address: str, labels: dict[str, str] | None = None) -> Path:
    """Add a static scrape target; Prometheus picks it up within a second, no reload needed."""
    groups = [{"targets": [address], "labels": {"job": job, **(labels or {})}}]
    path = targets_dir(state_dir) / _target_file_name(job, address)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, json.dumps(groups, indent=2))
    return path


def unregister_target(state_dir: Path, job: str, address: str) -> None:
    (targets_dir(state_dir) / _target_file_name(job, address)).unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """Prometheus re-reads file_sd files every second; it must never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _client(timeout: float) -> httpx.Client:
    # Loopback only: an HTTP(S)_PROXY in the environment must not capture it.
    return httpx.Client(timeout=timeout, trust_env=False)


def query(url: str, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Instant query; returns the ``result`` list of the HTTP API (``metric`` and ``value`` per series)."""
    with _client(timeout) as client:
        response = client.get(f"{url.rstrip('/')}/api/v1/query", params={"query": promql})
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise RuntimeError(f"Prometheus query {promql!r} failed: {response.status_code} {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def query_value(url: str, promql: str) -> float | None:
    """The single scalar of a query that returns at most one series; None when there is no data."""
    result = query(url, promql)
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"{promql!r} returned {len(result)} series, expected one")
    return float(result[0]["value"][1])


def targets(url: str) -> list[dict[str, Any]]:
    with _client(5.0) as client:
        response = client.get(f"{url.rstrip('/')}/api/v1/targets", params={"state": "active"})
    response.raise_for_status()
    active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
    return active


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Block until ``/-/ready`` answers 200 or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with _client(1.0) as client:
        while True:
            try:
                response = client.get(f"{url.rstrip('/')}/-/ready")
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus at {url} not ready after {timeout:.0f}s: {last_error}")
            time.sleep(0.1)


def reload(url: str) -> None:
    """Ask a running Prometheus to re-read its config (needs --web.enable-lifecycle)."""
    with _client(10.0) as client:
        client.post(f"{url.rstrip('/')}/-/reload").raise_for_status()


def free_address(host: str = "127.0.0.1") -> str:
    """A ``host:port`` nothing listens on right now (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return f"{host}:{sock.getsockname()[1]}"


@contextmanager
def serve(
    state_dir: Path, kubeconfig: Path | None = None, listen: str | None = None, timeout: float = 60.0
) -> Iterator[str]:
    """Run Prometheus for the length of a ``with`` block and yield its URL; for tests without ``devstack up``."""
    address = listen or free_address()
    log_path = prometheus_dir(state_dir) / "prometheus.log"
    with running(command(state_dir, kubeconfig, address), address, log_path, timeout) as url:
        yield url


@contextmanager
def running(argv: list[str], address: str, log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """A Prometheus process on ``argv`` listening on ``address`` until the ``with`` block ends; yields its URL.

    A Prometheus that never gets ready fails with its log's tail, which
    says why (a bad flag, a config it refused), not only that it timed out.
    """
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://{address}"
    try:
        try:
            wait_until_ready(url, timeout)
        except TimeoutError as exc:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise TimeoutError(f"{exc}; exit code {process.poll()}; log tail:\n{tail}") from exc
        yield url
    finally:
        terminate(process)


def terminate(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way (no zombie left to the test run)."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
