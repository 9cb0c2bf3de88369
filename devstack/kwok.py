"""Fake nodes for scale tests: kwok, started on demand, managing only nodes labelled ``type=kwok``.

Why separate: the pod runner turns pods into real processes on its node
``devstack-node``; kwok only flips pod status on fake nodes.  The two must never
fight over a pod, so the fake nodes carry the label kwok selects on
(``--manage-nodes-with-label-selector``) and a NoSchedule taint that keeps every
ordinary pod off them; a scale test opts in with ``FAKE_NODE_SELECTOR`` and
``FAKE_NODE_TOLERATION``.  kwok gives fake pods IPs from ``POD_CIDR``, a block of
127/8 that the pod runner never hands out (it claims 127.1-254.x.x) and where
nothing listens, so a stray connection to a fake pod stays on this machine.

kwok is not part of ``up`` by default (it costs a process the demo never
needs): ``python -m devstack up --kwok-nodes 3`` or the ``kwok_nodes`` test
fixture start it; it is recorded in ``cluster.json`` so ``down`` stops it.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from devstack import build, processes
from devstack.state import StateDir

NODE_LABEL_KEY = "type"
NODE_LABEL_VALUE = "kwok"
TAINT_KEY = "kwok.x-k8s.io/node"
TAINT_VALUE = "fake"
# The upper half of 127.255/16: outside the pod runner's 127.1-254 claims and the service range.
POD_CIDR = "127.255.128.1/17"
NODE_PREFIX = "kwok-node-"

FAKE_NODE_SELECTOR = {NODE_LABEL_KEY: NODE_LABEL_VALUE}
FAKE_NODE_TOLERATION = {"key": TAINT_KEY, "operator": "Equal", "value": TAINT_VALUE, "effect": "NoSchedule"}

_CONFIG = "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n"


class KwokError(RuntimeError):
    """kwok could not start or its nodes did not turn Ready."""


def node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                NODE_LABEL_KEY: NODE_LABEL_VALUE,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"taints": [{"key": TAINT_KEY, "value": TAINT_VALUE, "effect": "NoSchedule"}]},
    }


def argv(state: StateDir) -> list[str]:
    config = state.root / "kwok.yaml"
    config.write_text(_CONFIG)
    return [
        str(build.bin_dir() / "kwok"),
        # An explicit config file, so a user's ~/.kwok/kwok.yaml never changes what tests see.
        f"--config={config}",
        f"--kubeconfig={state.admin_kubeconfig}",
        f"--manage-nodes-with-label-selector={NODE_LABEL_KEY}={NODE_LABEL_VALUE}",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
        # One INFO line per pod patch adds up to megabytes in a 300-pod test.
        "--v=WARN",
    ]


def _kubectl(state: StateDir, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(build.bin_dir() / "kubectl"), f"--kubeconfig={state.admin_kubeconfig}", *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)


def ensure(state: StateDir, nodes: int, timeout: float = 60.0) -> list[str]:
    """Start kwok if it is not running and make sure ``nodes`` fake nodes exist and are Ready; return their names."""
    if nodes < 1:
        raise ValueError(f"kwok nodes must be at least 1, not {nodes}")
    binary = build.bin_dir() / "kwok"
    if not binary.exists():
        raise KwokError(f"{binary} is missing; run `make setup` first")
    with state.locked():
        record = state.read()
        if record is None:
            raise KwokError(f"no devstack in {state.root}; run `python -m devstack up` first")
        if not record.owns("kwok"):
            record.remember("kwok", processes.start(argv(state), state.log("kwok"), cwd=state.root))
            state.write(record)
    names = [f"{NODE_PREFIX}{i}" for i in range(nodes)]
    manifest = {"apiVersion": "v1", "kind": "List", "items": [node_manifest(name) for name in names]}
    applied = _kubectl(state, "apply", "-f", "-", input=json.dumps(manifest))
    if applied.returncode != 0:
        raise KwokError(f"creating kwok nodes failed: {applied.stderr.strip()}")
    _wait_nodes_ready(state, names, timeout)
    return names


def _wait_nodes_ready(state: StateDir, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    not_ready = names
    while time.monotonic() < deadline:
        result = _kubectl(state, "get", "nodes", "-l", f"{NODE_LABEL_KEY}={NODE_LABEL_VALUE}", "-o", "json")
        if result.returncode == 0:
            ready = {
                item["metadata"]["name"]
                for item in json.loads(result.stdout)["items"]
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in item.get("status", {}).get("conditions", [])
                )
            }
            not_ready = [name for name in names if name not in ready]
            if not not_ready:
                return
        time.sleep(0.3)
    raise KwokError(f"kwok nodes not Ready after {timeout:.0f} s: {', '.join(not_ready)}; see {state.log('kwok')}")
