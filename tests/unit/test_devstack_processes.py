"""How devstack knows its processes: the one it started, from the instant it started, and how each one ended."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from devstack import processes
from devstack.state import ClusterRecord
from devstack.testing import wait_for


def test_a_child_that_exits_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    # Exits at once: its status must survive until asked for, however soon the child is gone.
    pid = processes.start(["sh", "-c", "exit 3"], tmp_path / "sh.log").pid
    wait_for(lambda: not processes.alive(pid), 10, message="child exit")
    assert processes.how_it_ended(pid) == "exit code 3"


def test_a_child_killed_by_a_signal_is_reported_with_the_signal(tmp_path: Path) -> None:
    pid = processes.start(["sleep", "30"], tmp_path / "sleep.log").pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not processes.alive(pid), 10, message="child killed")
    assert processes.how_it_ended(pid) == "killed by SIGKILL"


def test_a_process_that_is_not_our_child_is_reported_as_unknown() -> None:
    assert "unknown" in processes.how_it_ended(1)


@contextlib.contextmanager
def _cpu_burners(count: int) -> Iterator[None]:
    """Busy loops on every core, as on a fresh CI machine still building and testing beside us."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _end(started: processes.Started) -> None:
    os.killpg(started.pid, signal.SIGKILL)
    os.waitpid(started.pid, 0)


def test_a_process_is_recognised_from_the_instant_it_is_started_even_on_a_busy_machine(tmp_path: Path) -> None:
    # The race this guards against: Popen returns inside the child's execve, while /proc/PID/cmdline
    # still reads empty; judging by the command line took a live etcd for "another program".
    misjudged = []
    with _cpu_burners(3):
        for attempt in range(300):
            started = processes.start(["sleep", "60"], tmp_path / "sleep.log")
            try:
                if not started.running():
                    misjudged.append(attempt)
            finally:
                _end(started)
    assert misjudged == []


def test_a_process_that_ended_is_no_longer_taken_for_running(tmp_path: Path) -> None:
    started = processes.start(["sleep", "60"], tmp_path / "sleep.log")
    _end(started)
    assert not started.running()


def test_a_later_process_with_the_same_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    started = processes.start(["sleep", "60"], tmp_path / "sleep.log")
    try:
        # What a pid reused by another program looks like: the same pid, created at another moment.
        reused = processes.Started(started.pid, started.start_ticks + 1, started.boot_id)
        assert started.running()
        assert not reused.running()
    finally:
        _end(started)


def test_a_pid_recorded_before_a_reboot_is_not_taken_for_ours(tmp_path: Path) -> None:
    started = processes.start(["sleep", "60"], tmp_path / "sleep.log")
    try:
        assert not processes.Started(started.pid, started.start_ticks, "another-boot").running()
    finally:
        _end(started)


def test_a_cluster_record_owns_only_the_processes_it_started(tmp_path: Path) -> None:
    record = ClusterRecord(api_server="https://127.0.0.1:1", kubeconfig="kubeconfig")
    started = processes.start(["sleep", "60"], tmp_path / "sleep.log")
    try:
        record.remember("etcd", started)
        reread = ClusterRecord.from_json(record.to_json())
        assert reread.owns("etcd")
        assert not reread.owns("kube-apiserver")
        legacy = ClusterRecord.from_json({**record.to_json(), "startTicks": {}})
        assert not legacy.owns("etcd")  # a record without start times proves nothing about a pid
    finally:
        _end(started)
    assert not reread.owns("etcd")
