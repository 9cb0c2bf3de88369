"""`python -m devstack` and devstack.testing on bad input and without a cluster: clear errors, no tracebacks."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.testing import namespace_name, wait_for


def _devstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wait_for_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "done", timeout=5, interval=0.01) == "done"


def test_wait_for_times_out_naming_the_condition_and_the_last_value() -> None:
    with pytest.raises(TimeoutError, match=r"pods ready after 0\.1 s; last value: \[\]"):
        wait_for(lambda: [], timeout=0.1, interval=0.02, message="pods ready")


def test_namespace_names_are_valid_and_unique() -> None:
    names = {namespace_name("test_something[Param-With_Odd/chars]" * 3) for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert len(name) <= 63
        assert name.replace("-", "").isalnum() and name == name.lower()
        assert not name.endswith("-")


def test_up_without_built_binaries_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = _devstack(
        "up", "--state-dir", str(tmp_path / "state"), env={"MODELRELEASE_CACHE": str(tmp_path / "empty-cache")}
    )
    assert result.returncode == 1
    assert "make setup" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "cluster.json").exists()


def test_status_of_a_state_dir_without_a_devstack_says_so(tmp_path: Path) -> None:
    result = _devstack("status", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "not running" in result.stdout


def test_a_corrupt_cluster_record_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text("{not json")
    result = _devstack("status", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "cluster.json is unreadable" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_of_an_unknown_component_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "etcd.log").write_text("hello\n")
    result = _devstack("logs", "kube-apiservr", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "known: etcd" in result.stderr
    assert _devstack("logs", "etcd", "--state-dir", str(tmp_path)).stdout.rstrip().endswith("hello")


def test_env_puts_the_built_kubectl_first_on_path(tmp_path: Path) -> None:
    result = _devstack("env", "--state-dir", str(tmp_path), env={"MODELRELEASE_CACHE": str(tmp_path / "c")})
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert exports["PATH"].split(os.pathsep)[0] == str(tmp_path / "c" / "bin" / "v1.34.4")
    assert exports["KUBECONFIG"] == str(tmp_path / "kubeconfig")
