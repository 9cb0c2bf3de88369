"""The API server's audit log on devstack: who wrote what, when, and what each Lease read or write said.

Why an audit log: the chaos trials (devstack.chaos) must prove that no
operator replica wrote while it did not hold its Lease.  The operator's own
log cannot prove that (a stale leader would not know it is stale), and an
object's managedFields keep only the last writer per field.  The API server
records every request it answered, with the authenticated user, in the order
it answered them; devstack gives each operator replica its own client
certificate, so ``user.username`` names the replica.

The policy is small on purpose: writes to the objects an operator touches at
Metadata level (no bodies), and Lease reads and writes with their bodies
(RequestResponse), because who a Lease named at each moment is the evidence.
Node heartbeat Leases are left out: with kwok's fake nodes they would be
most of the log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")

POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "None",
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            "namespaces": ["kube-node-lease", "kube-system"],
        },
        {
            "level": "RequestResponse",
            "verbs": ["get", *WRITE_VERBS],
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
        },
        {
            "level": "Metadata",
            "verbs": list(WRITE_VERBS),
            "resources": [
                {"group": "modelrelease.io", "resources": ["modelreleases", "modelreleases/status"]},
                {"group": "apps", "resources": ["deployments", "deployments/scale"]},
                {"group": "", "resources": ["services", "configmaps", "events"]},
                {"group": "events.k8s.io", "resources": ["events"]},
            ],
        },
        {"level": "None"},
    ],
}


EVERY_REQUEST_ENV = "MODELRELEASE_AUDIT_EVERY_REQUEST"
"""``1`` in the environment of ``devstack up``: the API server also logs every other request, at Metadata level.

Why not always: the tests' shared devstack needs only writes and Leases, and
every read and watch of every controller and pod would multiply its log.
``make bench-peers`` sets it, to count each controller's API requests per
second (issue 17); kwok's node heartbeats stay out of the log either way.
"""


def policy(every_request: bool = False) -> dict[str, Any]:
    """``POLICY``, or with ``every_request`` the same rules before a catch-all that logs the rest at Metadata level."""
    if not every_request:
        return POLICY
    rules = [
        *POLICY["rules"][:-1],
        {"level": "None", "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]},
        {"level": "Metadata"},
    ]
    return {**POLICY, "rules": rules}


def log_path(logs_dir: Path) -> Path:
    """Where devstack's API server writes its audit log (with the other component logs, kept one ``up`` back)."""
    return logs_dir / "audit.log"


def apiserver_args(state_root: Path, logs_dir: Path) -> list[str]:
    """The kube-apiserver flags that turn the audit log on; writes the policy file they name."""
    path = state_root / "audit-policy.yaml"
    path.write_text(yaml.safe_dump(policy(os.environ.get(EVERY_REQUEST_ENV) == "1"), sort_keys=False))
    return [
        f"--audit-policy-file={path}",
        f"--audit-log-path={log_path(logs_dir)}",
        "--audit-log-format=json",
        # One file: a trial reads from an offset, and a rotation in the middle would hide entries.
        "--audit-log-maxsize=512",
        "--audit-log-maxbackup=1",
    ]


@dataclass(frozen=True)
class AuditEntry:
    """One answered request.  Times are seconds since the epoch, on the API server's clock.

    ``holder`` is set for Leases only: the ``spec.holderIdentity`` the API
    server answered with (a read, or a successful write), or the one the
    request asked for when the answer carries none; ``None`` for a released
    Lease or a refused write.
    """

    received: float
    answered: float
    user: str
    verb: str
    resource: str
    """``modelreleases``, ``modelreleases/status``, ``deployments/scale``, ``leases``..."""
    namespace: str
    name: str
    code: int
    holder: str | None = None

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def succeeded(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_lease(self) -> bool:
        return self.resource == "leases"

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.user} {self.verb} {self.resource} {where} -> {self.code} at {format_moment(self.received)}"


def format_moment(seconds: float) -> str:
    """Wall-clock time with milliseconds, for evidence in messages."""
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S.%f")[:-3]


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _holder(event: dict[str, Any]) -> str | None:
    for key in ("responseObject", "requestObject"):
        found = event.get(key)
        if isinstance(found, dict) and found.get("kind") == "Lease":
            holder = (found.get("spec") or {}).get("holderIdentity")
            return str(holder) if holder else None
    return None


def parse_event(event: dict[str, Any]) -> AuditEntry | None:
    """An ``audit.k8s.io/v1`` Event (one log line, decoded) as an AuditEntry; None if it is not a finished request."""
    if event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    resource = str(ref.get("resource", ""))
    if ref.get("subresource"):
        resource = f"{resource}/{ref['subresource']}"
    code = int((event.get("responseStatus") or {}).get("code") or 0)
    lease = resource == "leases"
    return AuditEntry(
        received=_seconds(event["requestReceivedTimestamp"]),
        answered=_seconds(event["stageTimestamp"]),
        user=str((event.get("user") or {}).get("username", "")),
        verb=str(event.get("verb", "")),
        resource=resource,
        namespace=str(ref.get("namespace", "")),
        name=str(ref.get("name", "")),
        code=code,
        holder=_holder(event) if lease and 200 <= code < 300 else None,
    )


def read(path: Path, offset: int = 0) -> tuple[list[AuditEntry], int]:
    """Entries written to ``path`` from byte ``offset`` on, and the offset after the last complete line."""
    entries: list[AuditEntry] = []
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.splitlines():
        if not line.strip():
            continue
        entry = parse_event(json.loads(line))
        if entry is not None:
            entries.append(entry)
    return entries, offset + len(complete)


def size(path: Path) -> int:
    """The log's current length: where a reader that wants only what comes next starts."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
