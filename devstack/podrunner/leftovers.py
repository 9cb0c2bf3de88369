"""Processes left behind by a pod runner that died without stopping its pods.

Every pod process carries ``DEVSTACK_POD_RUNNER_STATE=<state dir>`` in its
environment; a new runner with the same state directory kills those process
groups before it starts pods again, so no orphan keeps a pod IP or port busy.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

MARKER = "DEVSTACK_POD_RUNNER_STATE"


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def find(state_dir: Path) -> list[int]:
    needle = f"{MARKER}={state_dir}".encode()
    me = os.getpid()
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and int(entry) != me and _environ_has(int(entry), needle)
    ]


def kill(state_dir: Path) -> list[int]:
    """SIGKILL the process group of every leftover pod process; return the pids found."""
    pids = find(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
