"""How devstack reports a component that died: the exit code or signal, not just "exited"."""

from __future__ import annotations

import os
import signal
import subprocess

from devstack import processes
from devstack.testing import wait_for


def _child(*argv: str) -> int:
    # Popen without wait(): the status is left for processes.how_it_ended to collect, as devstack's own starts are.
    return subprocess.Popen(list(argv)).pid


def test_a_child_that_exits_is_reported_with_its_exit_code() -> None:
    pid = _child("sh", "-c", "exit 3")
    wait_for(lambda: not processes.alive(pid), 10, message="child exit")
    assert processes.how_it_ended(pid) == "exit code 3"


def test_a_child_killed_by_a_signal_is_reported_with_the_signal() -> None:
    pid = _child("sleep", "30")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not processes.alive(pid), 10, message="child killed")
    assert processes.how_it_ended(pid) == "killed by SIGKILL"


def test_a_process_that_is_not_our_child_is_reported_as_unknown() -> None:
    assert "unknown" in processes.how_it_ended(1)
