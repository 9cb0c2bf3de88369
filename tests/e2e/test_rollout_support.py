"""Helpers for the rollout scenarios (no tests here): the operator process, releases, traffic accounting.

The fixtures that hand these out live in conftest.py; this module exists so
test modules can import the types (pytest discourages importing conftest).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.testing import Cluster, wait_for

REPO = Path(__file__).resolve().parents[2]
ANALYSIS_INTERVAL = "2s"
ACCURACY_RATIO = {
    "success": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}",'
    'outcome="correct"}[{{interval}}]))',
    "total": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}"}[{{interval}}]))',
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OperatorProcess:
    """The operator under test, as a child process with its log in a file."""

    cluster: Cluster
    namespaces: str
    log_path: Path
    identity: str
    lease_name: str
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "modelrelease.cli",
            "run",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--namespace={self.namespaces}",
            f"--metrics-port={self.metrics_port}",
            "--metrics-host=127.0.0.1",
            f"--prometheus-address={self.cluster.prometheus_url}",
            f"--identity={self.identity}",
            f"--lease-name={self.lease_name}",
            "--lease-namespace=default",
            "--log-format=text",
        ]
        # The operator of this checkout, whichever checkout the shared venv's editable install points at.
        env = {
            **self.cluster.env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "operator"), os.environ.get("PYTHONPATH")])),
        }
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {' '.join(command)}\n".encode())
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(self.healthy, 60, interval=0.3, message="operator /healthz")

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"operator exited ({self.process and self.process.returncode}):\n{self.log_tail()}")
        return _get(f"{self.metrics_url}/healthz") == 200

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the Lease is not released."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no operator log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class Releases:
    """ModelReleases in one namespace, driven with kubectl as a user would."""

    cluster: Cluster
    namespace: str
    name: str = "digits"

    def manifest(
        self,
        version: int,
        stages: list[dict[str, Any]] | None = None,
        metrics: list[dict[str, Any]] | None = None,
        **analysis: Any,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "model": {"name": "digits", "basePath": "/models/digits", "version": version},
            "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 3},
            "stages": stages
            or [
                {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
                {"name": "full", "weight": 100, "minChecks": 1},
            ],
            "analysis": {
                "interval": ANALYSIS_INTERVAL,
                "failureLimit": 2,
                "inconclusiveLimit": 20,
                "minChecks": 2,
                "metrics": metrics
                or [{"name": "accuracy", "ratio": ACCURACY_RATIO, "min": 0.8, "compareToBaseline": {"maxDrop": 0.02}}],
                **analysis,
            },
        }
        return {
            "apiVersion": "modelrelease.io/v1alpha1",
            "kind": "ModelRelease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(manifest))

    def set_version(self, version: int) -> None:
        patch = json.dumps({"spec": {"model": {"version": version}}})
        self.cluster.kubectl("patch", "modelrelease", self.name, "-n", self.namespace, "--type=merge", "-p", patch)

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.get("modelrelease", self.name, namespace=self.namespace)
        return found

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get().get("status") or {}
        return status

    def wait_phase(
        self, phase: str, timeout: float, also: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status()
            return status if status.get("phase") == phase and also(status) else None

        found: dict[str, Any] = wait_for(reached, timeout, interval=0.5, message=f"{self.name} phase {phase}")
        return found

    def events(self) -> list[dict[str, Any]]:
        return self.cluster.events(self.namespace, involved=self.name)

    def event_reasons(self) -> list[str]:
        return [e.get("reason", "") for e in self.events() if e.get("involvedObject", {}).get("kind") == "ModelRelease"]

    def deployment(self, version: int) -> dict[str, Any] | None:
        result = self.cluster.kubectl(
            "get", "deployment", f"{self.name}-v{version}", "-n", self.namespace, "-o", "json", check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    def stable_from_scratch(self, version: int = 1, timeout: float = 90) -> dict[str, Any]:
        self.apply(self.manifest(version))
        return self.wait_phase("Succeeded", timeout, also=lambda s: s.get("stableVersion") == version)


def answers_since(before: Any, after: Any) -> dict[str, int]:
    """Answers users saw per version between two ``TrafficStats`` snapshots."""
    return {
        v: after.versions[v] - before.versions.get(v, 0)
        for v in after.versions
        if after.versions[v] - before.versions.get(v, 0)
    }
