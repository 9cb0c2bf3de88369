"""Start and stop devstack's long-running processes, each in its own process group.

Why process groups: a component may fork helpers (the pod runner starts one
process per pod), and ``down`` must leave nothing behind.  Signalling the whole
group by the pid we recorded reaches every descendant that did not deliberately
leave it, and never touches a process some other engineer or test started.

Why a process is known by its pid *and* its start time (``Started``), never by
its command line: ``Popen`` returns as soon as the child's close-on-exec pipe
closes, which happens inside ``execve`` before the kernel has set up the new
program's argument area, so for a moment ``/proc/PID/cmdline`` reads empty and
a live etcd looked like "another program" (on a busy machine, one start in
eight).  The start time in ``/proc/PID/stat`` is fixed when the process is
forked, is the same before and after ``exec``, and differs for any later
process that reuses the pid; the boot id rules out a pid reused after a reboot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_children: dict[int, subprocess.Popen[bytes]] = {}


def boot_id() -> str:
    """This boot of the machine: pids and start times mean nothing across a reboot."""
    return BOOT_ID_PATH.read_text().strip()


def start_ticks(pid: int) -> int | None:
    """When the kernel created ``pid``, in clock ticks since boot (``/proc/PID/stat`` field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the parenthesised command name (which may hold spaces) start at field 3 (state).
    return int(stat.rsplit(")", 1)[-1].split()[19])


@dataclass(frozen=True)
class Started:
    """One process as devstack started it: the pid is reused by the kernel, the triple never is."""

    pid: int
    start_ticks: int
    boot_id: str

    @classmethod
    def of(cls, pid: int) -> Started:
        """The identity of the live process ``pid`` (a child just forked is already identifiable)."""
        ticks = start_ticks(pid)
        if ticks is None:
            raise ProcessLookupError(f"process {pid} does not exist")
        return cls(pid, ticks, boot_id())

    def running(self) -> bool:
        """True while this very process lives (not a zombie, not a later process with the same pid)."""
        return self.boot_id == boot_id() and alive(self.pid) and start_ticks(self.pid) == self.start_ticks


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def start(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Started:
    """Start ``argv`` detached in a new session (so a new process group); return who it is.

    The child outlives this Python process on purpose: ``python -m devstack up``
    returns while the cluster keeps running.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    # Kept so that Popen.__del__ never runs: it would reap a child that already exited, and its exit
    # status (what how_it_ended reports) would be lost.
    _children[proc.pid] = proc
    try:
        return Started.of(proc.pid)
    except ProcessLookupError:
        # Not even a zombie can vanish before we reap it, so this is unreachable; say so if it ever is not.
        raise RuntimeError(f"{argv[0]} (pid {proc.pid}) has no /proc entry right after it was started") from None


_exit_statuses: dict[int, int] = {}


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie (only ours can be reaped)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            _exit_statuses[pid] = status
            _children.pop(pid, None)


def how_it_ended(pid: int) -> str:
    """How a child of this process ended ("exit code 1", "killed by SIGKILL"), for error messages."""
    _reap(pid)
    status = _exit_statuses.get(pid)
    if status is None:
        return "ended (not reaped here, so its exit status is unknown)"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB, from /proc (what the benchmarks and the demo report)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Every live process whose process group is ``pgid`` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # fields: state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL whatever is left after ``grace`` seconds."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid) and not group_members(pid):
            return
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (alive(pid) or group_members(pid)):
        time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        # Not our group (the pid was reused by someone else's process): leave it alone.
        return
