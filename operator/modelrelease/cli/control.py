"""Manual control from the CLI: check that a request makes sense now, then write its annotation.

Why check here when the operator checks too: the operator consumes a
request that makes no sense with only a Warning event, which the person who
typed the command may never see.  The CLI reads the release first and
refuses with the reason at once (approve when nothing waits, retry when
nothing was rolled back); the operator's own check stays the authority
(the phase can change between the read and the write).

Every request is an annotation (``api.annotations``); approve's value names
the stage, the others carry the time they were written, so a request
written twice is two distinct values (the operator removes a consumed
annotation only if it still holds the value it acted on).
"""

from __future__ import annotations

from datetime import datetime

from modelrelease.api.annotations import RequestKind
from modelrelease.cli.cluster import Obj
from modelrelease.engine.clock import format_time

ACTIVE = ("Progressing", "Paused", "AwaitingApproval")


def refusal(kind: RequestKind, release: Obj, stage: str | None = None) -> str | None:
    """Why ``kind`` makes no sense for ``release`` as it is now, or None when it may be written."""
    status = release.get("status") or {}
    spec = release.get("spec") or {}
    phase = status.get("phase", "")
    candidate = status.get("candidateVersion")
    current = (status.get("stage") or {}).get("name")
    in_rollout = candidate is not None and phase in (*ACTIVE, "Failed")
    if kind == "retry":
        if phase == "RolledBack" and status.get("rejectedVersion") == (spec.get("model") or {}).get("version"):
            return None
        if phase == "Failed":
            return None
        return f"nothing to retry: the release is {phase or 'new'}; only a rolled-back or failed rollout can be retried"
    if kind == "resume":
        if status.get("pausedByRequest"):
            return None
        if spec.get("paused"):
            return "not paused by request: spec.paused is true, set it to false in Git (or kubectl patch) to resume"
        return f"not paused: the release is {phase or 'new'}"
    if not in_rollout:
        return f"no rollout in progress: the release is {phase or 'new'}"
    if kind == "pause":
        if phase == "Failed":
            return "the rollout has failed and is already stopped: abort, retry or promote it"
        if status.get("pausedByRequest"):
            return "already paused by request (modelrelease resume continues)"
        return None
    if kind == "approve":
        return _approve_refusal(release, current, stage)
    return None


def _approve_refusal(release: Obj, current: str | None, stage: str | None) -> str | None:
    status = release.get("status") or {}
    if current is None:
        return "no stage is waiting for approval"
    if stage is not None and stage != current:
        return f"stage {stage} is not the current stage ({current}); approve the current one"
    stages = (release.get("spec") or {}).get("stages") or []
    wanted: Obj = next((s for s in stages if s.get("name") == current), {})
    if not wanted.get("approval"):
        return f"nothing waits for approval: stage {current} has no approval gate"
    if (status.get("stage") or {}).get("approved"):
        return f"stage {current} is already approved"
    return None


def annotation_value(kind: RequestKind, release: Obj, stage: str | None, now: datetime) -> str:
    """approve's value is the stage (the current one when none is named); the others the time of the request."""
    if kind == "approve":
        return stage or str(((release.get("status") or {}).get("stage") or {}).get("name", ""))
    return format_time(now)
