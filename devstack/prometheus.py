"""Prometheus for devstack: Debian's package, our own config, started by ``python -m devstack up``.

Why Debian's binary and a generated config: the operator under test talks to a
real Prometheus, discovering real pods through the local API server exactly as
a cluster's PodMonitor would, so per-version labels come from the same
relabelling the Helm chart documents.  Static targets (the traffic generator,
the operator's metrics port) are file_sd JSON files, so registering one never
needs a restart or a reload.

The package's own systemd unit is never used: we run ``/usr/bin/prometheus``
with a config, data directory and loopback listen address under the state dir.

Debian builds Prometheus without the Kubernetes service discovery plugin
(``kubernetes_sd_configs`` is an unknown field to its 2.42), so when
``promtool`` refuses that field, ``command()`` runs Prometheus under
``python -m devstack.prometheus run``: a small supervisor that lists pods
through the API every second and writes them to a file_sd file with the very
``__meta_kubernetes_pod_*`` labels the plugin would produce.  The relabelling
is the same either way and is done by Prometheus itself.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

BINARY = Path("/usr/bin/prometheus")
SCRAPE_INTERVAL = "1s"
# Short: devstack data is only ever looked at while a test or demo runs.
RETENTION = "2h"
POD_SCRAPE_JOB = "kubernetes-pods"
STATIC_JOB = "devstack-static"


class PrometheusNotInstalled(RuntimeError):
    """Prometheus is missing and this process cannot install it."""


def find_binary() -> Path | None:
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    return BINARY if BINARY.exists() else None


def ensure_installed() -> Path:
    """Return the prometheus binary, installing Debian's package first when it is missing.

    Cheap when present, so ``make setup`` can call it every time.
    """
    binary = find_binary()
    if binary is not None:
        return binary
    if os.geteuid() != 0:
        raise PrometheusNotInstalled(
            "prometheus is not installed and this user cannot install it: run "
            "`sudo apt-get update && sudo apt-get install -y prometheus` (Debian/Ubuntu), "
            "or put a prometheus binary (2.40 or newer) on PATH, then run `make setup` again."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"],
        check=True,
        env=env,
    )
    binary = find_binary()
    if binary is None:
        raise PrometheusNotInstalled("apt-get installed prometheus but no prometheus binary was found")
    return binary


def prometheus_dir(state_dir: Path) -> Path:
    return state_dir / "prometheus"


def targets_dir(state_dir: Path) -> Path:
    return prometheus_dir(state_dir) / "targets"


def discovered_dir(state_dir: Path) -> Path:
    return prometheus_dir(state_dir) / "discovered"


def _sanitize(name: str) -> str:
    """Prometheus' SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _label_meta(label: str) -> str:
    """The ``__meta_kubernetes_pod_label_*`` name Prometheus gives a pod label."""
    return "__meta_kubernetes_pod_label_" + _sanitize(label)


def _annotation_meta(annotation: str) -> str:
    return "__meta_kubernetes_pod_annotation_" + _sanitize(annotation)


@functools.cache
def supports_kubernetes_sd(binary: Path) -> bool:
    """Whether this Prometheus build has the Kubernetes SD plugin (Debian's does not); asks its promtool."""
    promtool = binary.with_name("promtool")
    if not promtool.exists():
        return True  # an upstream tarball build: every plugin is in
    probe = {"scrape_configs": [{"job_name": "probe", "kubernetes_sd_configs": [{"role": "pod"}]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as handle:
        handle.write(yaml.safe_dump(probe))
        handle.flush()
        result = subprocess.run([str(promtool), "check", "config", handle.name], capture_output=True, check=False)
    return result.returncode == 0


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


def config(state_dir: Path, kubeconfig: Path | None, native_kubernetes_sd: bool = True) -> dict[str, Any]:
    """Without a kubeconfig only the static (file_sd) job is configured: Prometheus without a cluster.

    Without ``native_kubernetes_sd`` the pod job reads what ``run`` discovers
    (same meta labels, same relabelling).
    """
    scrape_configs: list[dict[str, Any]] = []
    if kubeconfig is not None:
        discovery: dict[str, Any] = (
            {"kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(kubeconfig)}]}
            if native_kubernetes_sd
            else {"file_sd_configs": [{"files": [str(discovered_dir(state_dir) / "*.json")], "refresh_interval": "1s"}]}
        )
        scrape_configs.append({"job_name": POD_SCRAPE_JOB, **discovery, "relabel_configs": pod_relabel_configs()})
    scrape_configs.append(
        {
            "job_name": STATIC_JOB,
            "file_sd_configs": [{"files": [str(targets_dir(state_dir) / "*.json")], "refresh_interval": "1s"}],
        }
    )
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": scrape_configs,
    }


def write_config(state_dir: Path, kubeconfig: Path | None, native_kubernetes_sd: bool = True) -> Path:
    directory = prometheus_dir(state_dir)
    targets_dir(state_dir).mkdir(parents=True, exist_ok=True)
    discovered_dir(state_dir).mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    _write_atomically(path, yaml.safe_dump(config(state_dir, kubeconfig, native_kubernetes_sd), sort_keys=False))
    return path


def command(state_dir: Path, kubeconfig: Path | None, listen: str) -> list[str]:
    """Write the config under ``state_dir/prometheus`` and return the argv that runs Prometheus on it.

    With a Prometheus that lacks Kubernetes SD the argv is the ``run``
    supervisor wrapping the same Prometheus argv; stopping it stops both.
    """
    binary = find_binary()
    if binary is None:
        raise PrometheusNotInstalled("prometheus is not installed: run `make setup` (python -m devstack setup)")
    native = kubeconfig is None or supports_kubernetes_sd(binary)
    config_path = write_config(state_dir, kubeconfig, native)
    data = prometheus_dir(state_dir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        # Debian's defaults point at /usr/share paths that a user install may lack.
        f"--web.console.templates={data / 'consoles'}",
        f"--web.console.libraries={data / 'console_libraries'}",
        "--log.level=warn",
    ]
    if native:
        return argv
    assert kubeconfig is not None
    discovery_file = discovered_dir(state_dir) / "pods.json"
    return [
        sys.executable,
        "-m",
        "devstack.prometheus",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--pods-file={discovery_file}",
        "--",
        *argv,
    ]


# --- pod discovery for a Prometheus without the Kubernetes SD plugin ---------------------------------------------


def pod_target_groups(pods: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """file_sd groups with the labels Prometheus' Kubernetes SD (role pod) gives each container port."""
    groups = []
    for pod in pods:
        metadata, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        ip = status.get("podIP")
        if not ip:
            continue
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        labels: dict[str, str] = {
            "__meta_kubernetes_namespace": metadata.get("namespace", ""),
            "__meta_kubernetes_pod_name": metadata.get("name", ""),
            "__meta_kubernetes_pod_uid": metadata.get("uid", ""),
            "__meta_kubernetes_pod_ip": ip,
            "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
            "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
            "__meta_kubernetes_pod_phase": status.get("phase", ""),
            "__meta_kubernetes_pod_ready": str(conditions.get("Ready", "unknown")).lower(),
        }
        for owner in metadata.get("ownerReferences") or []:
            if owner.get("controller"):
                labels["__meta_kubernetes_pod_controller_kind"] = owner.get("kind", "")
                labels["__meta_kubernetes_pod_controller_name"] = owner.get("name", "")
        for key, value in (metadata.get("labels") or {}).items():
            labels[_label_meta(key)] = value
            labels["__meta_kubernetes_pod_labelpresent_" + _sanitize(key)] = "true"
        for key, value in (metadata.get("annotations") or {}).items():
            labels[_annotation_meta(key)] = value
            labels["__meta_kubernetes_pod_annotationpresent_" + _sanitize(key)] = "true"
        for container in spec.get("containers") or []:
            container_labels = {**labels, "__meta_kubernetes_pod_container_name": container.get("name", "")}
            ports = container.get("ports") or []
            if not ports:
                groups.append({"targets": [ip], "labels": container_labels})
            for port in ports:
                number = port.get("containerPort")
                groups.append(
                    {
                        "targets": [f"{ip}:{number}"],
                        "labels": {
                            **container_labels,
                            "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                            "__meta_kubernetes_pod_container_port_number": str(number),
                            "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP"),
                        },
                    }
                )
    return groups


def discover_pods_forever(kubeconfig: Path, pods_file: Path, stop: threading.Event, interval: float = 1.0) -> None:
    """Rewrite ``pods_file`` whenever the cluster's pods change; API errors are reported and retried."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    core = client.CoreV1Api(api)
    written = None
    while not stop.is_set():
        try:
            pods = api.sanitize_for_serialization(core.list_pod_for_all_namespaces(_request_timeout=10))
            text = json.dumps(pod_target_groups(pods.get("items") or []), indent=1, sort_keys=True)
            if text != written:
                _write_atomically(pods_file, text)
                written = text
        except Exception as exc:  # the API server may be restarting; Prometheus keeps the last targets
            print(f"devstack.prometheus: pod discovery: {exc}", file=sys.stderr, flush=True)
        stop.wait(interval)


def _die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor is killed outright, Prometheus gets SIGTERM too."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run(kubeconfig: Path, pods_file: Path, prometheus_argv: list[str]) -> int:
    """Supervise Prometheus and feed it the pods it cannot discover itself; exits with Prometheus' code."""
    pods_file.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    discovery = threading.Thread(
        target=discover_pods_forever, args=(kubeconfig, pods_file, stop), name="pod-discovery", daemon=True
    )
    discovery.start()
    child = subprocess.Popen(prometheus_argv, preexec_fn=_die_with_parent)

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = child.wait()
    stop.set()
    discovery.join(timeout=5)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.prometheus")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run Prometheus with devstack's pod discovery (see the module doc)")
    run_parser.add_argument("--kubeconfig", type=Path, required=True)
    run_parser.add_argument("--pods-file", type=Path, required=True)
    run_parser.add_argument("prometheus", nargs=argparse.REMAINDER, help="-- then Prometheus' own argv")
    args = parser.parse_args(argv)
    prometheus_argv = args.prometheus[1:] if args.prometheus[:1] == ["--"] else args.prometheus
    return run(args.kubeconfig, args.pods_file, prometheus_argv)


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
    argv = command(state_dir, kubeconfig, address)
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
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
