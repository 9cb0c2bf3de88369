"""Manual requests (approve, promote, abort, retry, pause, resume) read from annotations.

Pause and resume are requests too, so that freezing a rollout by hand never
edits spec (GitOps would see drift); the pause is kept in
``status.pausedByRequest`` until a resume or the end of the rollout, and
``spec.paused`` stays the declarative switch kept in Git.  A rollout paused
either way is paused; resume lifts only the request's pause.

Every request is consumed, whether acted on or not, so a stale annotation
cannot fire later in a different situation; a refused one gets a Warning
event that says why, so the person who wrote it finds out.
"""

from __future__ import annotations

from modelrelease.api.status import Phase
from modelrelease.engine.actions import ConsumeRequest
from modelrelease.engine.bake import abort_or_promote
from modelrelease.engine.context import Pass
from modelrelease.engine.lifecycle import promote, rollback, start_rollout
from modelrelease.engine.observations import Request
from modelrelease.engine.phases import ACTIVE_PHASES

_WITH_CANDIDATE = ACTIVE_PHASES | {Phase.FAILED}


def handle_requests(ctx: Pass) -> None:
    for request in ctx.observations.requests:
        ctx.actions.append(ConsumeRequest(request))
        refusal = _apply(ctx, request)
        if refusal:
            ctx.emit("Warning", "RequestIgnored", f"{request.kind} ignored: {refusal}")


def _apply(ctx: Pass, request: Request) -> str | None:
    """Act on one request; return why it was refused, or None."""
    status = ctx.status
    candidate = status.candidate_version
    has_candidate = candidate is not None and status.phase in _WITH_CANDIDATE
    if request.kind == "retry":
        return _retry(ctx)
    if request.kind == "resume":
        return _resume(ctx, candidate)
    if status.phase == Phase.BAKING and candidate is None and request.kind in ("abort", "promote"):
        return abort_or_promote(ctx, request.kind)
    if not has_candidate or candidate is None:
        return "no rollout in progress"
    if request.kind == "pause":
        return _pause(ctx, candidate)
    if request.kind == "abort":
        rollback(ctx, "Aborted", "AbortRequested", "aborted by request")
        return None
    if request.kind == "promote":
        promote(ctx, "PromoteRequested", "promoted by request, skipping the remaining stages")
        return None
    return _approve(ctx, candidate, request.stage)


def _approve(ctx: Pass, candidate: int, stage_name: str | None) -> str | None:
    stage = ctx.status.stage
    if stage is None or stage_name != stage.name:
        current = stage.name if stage else "none"
        return f"approval is for stage {stage_name or '(none)'} but the current stage is {current}"
    if not stage.approved:
        stage.approved = True
        ctx.record(candidate, "Approved", "ApproveRequested", f"stage {stage.name} approved", stage.name)
        ctx.emit("Normal", "Approved", f"v{candidate}: stage {stage.name} approved")
    return None


def _pause(ctx: Pass, candidate: int) -> str | None:
    status = ctx.status
    if status.phase == Phase.FAILED:
        return "the rollout has failed and is already stopped: abort, retry or promote it"
    if status.paused_by_request:
        return "already paused by request"
    status.paused_by_request = True
    stage = status.stage.name if status.stage else None
    ctx.record(candidate, "Paused", "PauseRequested", "paused by request", stage)
    ctx.emit("Normal", "Paused", f"v{candidate}: paused by request; modelrelease.io/resume continues")
    return None


def _resume(ctx: Pass, candidate: int | None) -> str | None:
    status = ctx.status
    if not status.paused_by_request:
        if ctx.spec.paused and candidate is not None:
            return "not paused by request: spec.paused is true, set it to false (in Git) to go on"
        return "not paused by request"
    status.paused_by_request = False
    if candidate is not None:
        stage = status.stage.name if status.stage else None
        ctx.record(candidate, "Resumed", "ResumeRequested", "resumed by request", stage)
        still = "; still paused by spec.paused" if ctx.spec.paused else ""
        ctx.emit("Normal", "Resumed", f"v{candidate}: resumed by request{still}")
    return None


def _retry(ctx: Pass) -> str | None:
    status = ctx.status
    wanted = ctx.spec.model.version
    if status.phase == Phase.ROLLED_BACK and status.rejected_version == wanted:
        ctx.record(wanted, "Retried", "RetryRequested", "rolled-back version tried again by request")
        start_rollout(ctx, wanted, "RetryRequested", "retry requested after rollback")
        return None
    if status.phase == Phase.FAILED and status.candidate_version is not None:
        version = status.candidate_version
        ctx.record(version, "Retried", "RetryRequested", "failed candidate restarted from its first stage")
        start_rollout(ctx, version, "RetryRequested", "retry requested: restarting from the first stage")
        return None
    return "only a rolled-back or failed release can be retried"
