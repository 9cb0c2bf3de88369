"""Pod IPs from 127.0.0.0/8, unique on this machine and stable across pod runner restarts.

Linux routes all of 127/8 to loopback, so every pod can bind its own address
without privileges.  Several pod runners may share the machine (one devstack
per engineer or per CI job), so each claims a whole /16 (127.N.0.0, N >= 1,
never 127.0.x.x where everything else listens) with an advisory lock held for
its lifetime; the kernel drops the lock when the runner dies.  Allocations are
written to the state directory, so a restarted runner gives a pod back its IP
and never hands a live pod's IP to another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO

FIRST_SUBNET = 1
LAST_SUBNET = 254


class SubnetUnavailableError(RuntimeError):
    pass


class SubnetClaim:
    """An exclusive claim on 127.N.0.0/16, released when closed or when the process exits."""

    def __init__(self, subnet: int, handle: IO[str]) -> None:
        self.subnet = subnet
        self._handle = handle

    @classmethod
    def acquire(cls, lock_dir: Path, preferred: int | None = None) -> SubnetClaim:
        lock_dir.mkdir(parents=True, exist_ok=True)
        order = list(range(FIRST_SUBNET, LAST_SUBNET + 1))
        if preferred is not None and preferred in order:
            order.remove(preferred)
            order.insert(0, preferred)
        for subnet in order:
            handle = open(lock_dir / f"127.{subnet}.lock", "a+")  # noqa: SIM115 - held for the claim's lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return cls(subnet, handle)
        raise SubnetUnavailableError(f"every subnet 127.{FIRST_SUBNET}-{LAST_SUBNET}.0.0/16 is claimed in {lock_dir}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


HOSTS_PER_THIRD_OCTET = 253  # .2 to .254: no .0, no .1 (gateway-like), no .255 (broadcast-like)
POOL_SIZE = 256 * HOSTS_PER_THIRD_OCTET


class IPAllocator:
    """Hands out 127.N.a.b per pod UID, round robin, and persists the table after every change.

    Round robin, as CNI host-local IPAM does, so that a deleted pod's address
    is not reused at once while clients and EndpointSlices may still name it.
    """

    def __init__(self, state_file: Path, subnet: int) -> None:
        if not FIRST_SUBNET <= subnet <= LAST_SUBNET:
            raise ValueError(f"subnet must be in {FIRST_SUBNET}..{LAST_SUBNET}, not {subnet}")
        self._file = state_file
        self.subnet = subnet
        self._by_uid: dict[str, str] = {}
        self._cursor = 0
        if state_file.exists():
            saved = json.loads(state_file.read_text())
            if saved.get("subnet") == subnet:
                self._by_uid = dict(saved.get("allocations", {}))
                self._cursor = int(saved.get("cursor", 0)) % POOL_SIZE

    @staticmethod
    def saved_subnet(state_file: Path) -> int | None:
        """The subnet a previous runner with this state directory used, so a restart can ask for it back."""
        try:
            value = json.loads(state_file.read_text()).get("subnet")
        except (OSError, ValueError):
            return None
        return value if isinstance(value, int) else None

    def allocations(self) -> dict[str, str]:
        return dict(self._by_uid)

    def allocate(self, uid: str) -> str:
        if uid in self._by_uid:
            return self._by_uid[uid]
        used = set(self._by_uid.values())
        for step in range(POOL_SIZE):
            index = (self._cursor + step) % POOL_SIZE
            third, offset = divmod(index, HOSTS_PER_THIRD_OCTET)
            candidate = f"127.{self.subnet}.{third}.{offset + 2}"
            if candidate not in used:
                self._by_uid[uid] = candidate
                self._cursor = (index + 1) % POOL_SIZE
                self._save()
                return candidate
        raise SubnetUnavailableError(f"127.{self.subnet}.0.0/16 is exhausted")

    def release(self, uid: str) -> None:
        if self._by_uid.pop(uid, None) is not None:
            self._save()

    def retain(self, live_uids: set[str]) -> None:
        """Forget allocations of pods that no longer exist (called once the runner has listed its pods)."""
        stale = set(self._by_uid) - live_uids
        for uid in stale:
            del self._by_uid[uid]
        if stale:
            self._save()

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"subnet": self.subnet, "cursor": self._cursor, "allocations": self._by_uid}, indent=1)
        )
        tmp.replace(self._file)
