"""A separate, throwaway devstack: `up` is idempotent and `down` leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import processes

pytestmark = pytest.mark.cluster


def _devstack(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MODELRELEASE_DEVSTACK_DIR=str(state_dir))
    env.pop("MODELRELEASE_KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], env=env, capture_output=True, text=True, timeout=180
    )


def test_up_twice_is_idempotent_and_down_stops_every_recorded_process(tmp_path: Path) -> None:
    state_dir = tmp_path / "devstack"
    record_path = state_dir / "cluster.json"
    first = _devstack(state_dir, "up", "--no-podrunner", "--no-prometheus", "--no-gateway")
    try:
        assert first.returncode == 0, first.stdout + first.stderr
        record = json.loads(record_path.read_text())
        pids: dict[str, int] = record["pids"]
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
        assert all(processes.alive(pid) for pid in pids.values())

        second = _devstack(state_dir, "up", "--no-podrunner", "--no-prometheus", "--no-gateway")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert json.loads(record_path.read_text())["pids"] == pids

        status = _devstack(state_dir, "status")
        assert status.returncode == 0
        assert "readyz" in status.stdout and "200" in status.stdout

        # A devstack configured by older code is restarted, not silently reused, when nobody uses it.
        record["fingerprint"] = "configured by an older devstack"
        record_path.write_text(json.dumps(record))
        third = _devstack(state_dir, "up", "--no-podrunner", "--no-prometheus", "--no-gateway")
        assert third.returncode == 0, third.stdout + third.stderr
        assert "older devstack code" in third.stdout
        assert not any(processes.alive(pid) for pid in pids.values())
        pids = json.loads(record_path.read_text())["pids"]
    finally:
        down = _devstack(state_dir, "down")
    assert down.returncode == 0, down.stderr
    leftovers = {name: pid for name, pid in pids.items() if processes.alive(pid) or processes.group_members(pid)}
    assert leftovers == {}
    assert not record_path.exists()
    assert _devstack(state_dir, "status").returncode == 1
