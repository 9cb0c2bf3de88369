"""Where a devstack lives on disk and what ``cluster.json`` says about it.

One state directory holds everything of one cluster: PKI, etcd data, logs,
kubeconfigs and ``cluster.json``, the record that ``down``, ``status``, the
test fixtures and the other devstack components read.  ``MODELRELEASE_DEVSTACK_DIR``
points at another directory, so a test can run a second, separate cluster.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import cache_root, processes

STATE_DIR_ENV = "MODELRELEASE_DEVSTACK_DIR"


def default_state_dir() -> Path:
    override = os.environ.get(STATE_DIR_ENV)
    return Path(override) if override else cache_root() / "devstack"


@dataclass
class ClusterRecord:
    """The contents of ``<state>/cluster.json``; keys are camelCase as other tools read them."""

    api_server: str
    kubeconfig: str
    prometheus_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    # When each pid was created, and in which boot (processes.Started), so that a pid the kernel gave
    # to another program since is never taken for ours, never signalled, never waited on.
    start_ticks: dict[str, int] = field(default_factory=dict)
    boot_id: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    started_by: str = "cli"
    ready_seconds: float | None = None
    # What the cluster was configured as (devstack.cluster.config_fingerprint), so a devstack left running
    # by older code is recognised and restarted instead of silently reused.
    fingerprint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "apiServer": self.api_server,
            "kubeconfig": self.kubeconfig,
            "prometheusUrl": self.prometheus_url,
            "pids": self.pids,
            "startTicks": self.start_ticks,
            "bootId": self.boot_id,
            "ports": self.ports,
            "startedBy": self.started_by,
            "readySeconds": self.ready_seconds,
            "fingerprint": self.fingerprint,
        }

    def remember(self, name: str, started: processes.Started) -> None:
        """Record a component just started (the caller writes the record)."""
        self.pids[name] = started.pid
        self.start_ticks[name] = started.start_ticks
        self.boot_id = started.boot_id

    def started(self, name: str) -> processes.Started | None:
        """The process recorded for ``name``; None if none was, or the record predates start times."""
        if name not in self.pids or name not in self.start_ticks:
            return None
        return processes.Started(self.pids[name], self.start_ticks[name], self.boot_id)

    def owns(self, name: str) -> bool:
        """True while the very process recorded for ``name`` lives (never a pid reused by another program)."""
        started = self.started(name)
        return started is not None and started.running()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(
            api_server=str(data["apiServer"]),
            kubeconfig=str(data["kubeconfig"]),
            prometheus_url=data.get("prometheusUrl"),
            pids={str(k): int(v) for k, v in data.get("pids", {}).items()},
            start_ticks={str(k): int(v) for k, v in data.get("startTicks", {}).items()},
            boot_id=str(data.get("bootId", "")),
            ports={str(k): int(v) for k, v in data.get("ports", {}).items()},
            started_by=str(data.get("startedBy", "cli")),
            ready_seconds=data.get("readySeconds"),
            fingerprint=str(data.get("fingerprint", "")),
        )


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def record_path(self) -> Path:
        return self.root / "cluster.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def users(self) -> Path:
        """One file per live test session using this cluster, so the last one out stops it."""
        return self.root / "users"

    def live_users(self) -> list[Path]:
        """The registered test sessions, other than this process, whose process still exists."""
        if not self.users.exists():
            return []
        me = str(os.getpid())
        return [p for p in self.users.iterdir() if p.name.isdigit() and p.name != me and processes.alive(int(p.name))]

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def read(self) -> ClusterRecord | None:
        try:
            data = json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{self.record_path} is unreadable ({exc}); remove it or run `down`") from exc
        try:
            return ClusterRecord.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeError(f"{self.record_path} is not a devstack record ({exc}); remove it") from exc

    def write(self, record: ClusterRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.to_json(), indent=2) + "\n")
        tmp.rename(self.record_path)

    def forget(self) -> None:
        self.record_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise up/down between concurrent callers (several test sessions share one cluster)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
