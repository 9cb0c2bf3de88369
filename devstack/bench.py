"""`python -m devstack bench`: how long the local cluster takes to start, scale and stop.

Runs a separate, throwaway devstack in a temporary state directory (no pod
runner, no Prometheus), so it never disturbs a cluster someone is using, and
prints the numbers the issue asks for: built-to-ready, kwok nodes, N fake pods
to Running, and ``down``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from devstack import build, cluster, kwok
from devstack.state import StateDir


def _kubectl(state: StateDir, *args: str, input: str | None = None) -> str:
    cmd = [str(build.bin_dir() / "kubectl"), f"--kubeconfig={state.admin_kubeconfig}", *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, check=True, timeout=120).stdout


def _running(state: StateDir) -> int:
    pods = json.loads(_kubectl(state, "get", "pods", "-n", "default", "-l", "app=bench", "-o", "json"))["items"]
    return sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")


def run(pods: int = 300, timeout: float = 300.0) -> dict[str, float]:
    if pods < 1:
        raise ValueError(f"pods must be at least 1, not {pods}")
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="devstack-bench-") as tmp:
        state = StateDir(Path(tmp))
        t0 = time.monotonic()
        try:
            cluster.up(state, podrunner=False, prometheus=False, started_by="bench")
            timings["up (built -> /readyz, controllers healthy)"] = time.monotonic() - t0
            t0 = time.monotonic()
            kwok.ensure(state, 3)
            timings["kwok + 3 fake nodes Ready"] = time.monotonic() - t0
            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "bench", "namespace": "default"},
                "spec": {
                    "replicas": pods,
                    "selector": {"matchLabels": {"app": "bench"}},
                    "template": {
                        "metadata": {"labels": {"app": "bench"}},
                        "spec": {
                            "containers": [{"name": "app", "image": "registry.invalid/bench:1"}],
                            "nodeSelector": kwok.FAKE_NODE_SELECTOR,
                            "tolerations": [kwok.FAKE_NODE_TOLERATION],
                        },
                    },
                },
            }
            t0 = time.monotonic()
            _kubectl(state, "apply", "-f", "-", input=json.dumps(deployment))
            deadline = time.monotonic() + timeout
            while _running(state) < pods:
                if time.monotonic() > deadline:
                    raise cluster.DevstackError(f"{pods} fake pods not Running after {timeout:.0f} s")
                time.sleep(0.5)
            timings[f"{pods} fake pods Running"] = time.monotonic() - t0
        finally:
            t0 = time.monotonic()
            cluster.down(state)
            timings["down"] = time.monotonic() - t0
    return timings


def main(pods: int = 300) -> int:
    for step, secs in run(pods).items():
        print(f"devstack bench: {step:<44} {secs:7.2f} s")
    return 0
