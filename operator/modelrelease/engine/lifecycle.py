"""The big moves of a release: start, restart, enter a stage, fail, roll back, retire, promote.

Each move leaves status consistent on its own (versions, stage, counters,
phase) and records itself in history and as an event, so the story of a
release can be read back from either.
"""

from __future__ import annotations

from modelrelease.api.status import AnalysisStatus, Phase, StageStatus
from modelrelease.engine.bake import deciding, evidence_for, start_bake
from modelrelease.engine.context import Pass
from modelrelease.engine.hooks import ask, drop_gates
from modelrelease.engine.serving_hash import serving_hash


def _clear_candidate(ctx: Pass) -> None:
    status = ctx.status
    status.candidate_version = None
    status.stage = None
    status.candidate_started_at = None
    status.candidate_ready_at = None
    status.paused_by_request = False
    status.pre_rollout_passed = False
    drop_gates(ctx)


def enter_stage(ctx: Pass, index: int) -> None:
    """Start stage ``index`` with fresh counters: results of one stage never count for the next."""
    stage = ctx.spec.stages[index]
    ready = ctx.status.candidate_ready_at is not None
    ctx.status.stage = StageStatus(
        index=index,
        name=stage.name,
        weight=stage.weight or 0,
        mirror=stage.mirror or 0,
        entered_at=ctx.stamp if ready else None,
    )
    ctx.status.analysis = AnalysisStatus()


def start_rollout(ctx: Pass, version: int, reason: str, message: str) -> None:
    status = ctx.status
    status.candidate_version = version
    status.candidate_started_at = ctx.stamp
    status.candidate_ready_at = None
    status.rejected_version = None
    status.paused_by_request = False
    status.pre_rollout_passed = False
    status.last_judged = None
    drop_gates(ctx)
    status.serving_hash = serving_hash(ctx.spec.serving)
    status.phase = Phase.PROGRESSING
    status.analysis = AnalysisStatus()
    status.stage = None
    if ctx.spec.stages:
        enter_stage(ctx, 0)
    ctx.started = True
    ctx.record(version, "Started", reason, message, lineage=True)
    ctx.emit("Normal", "RolloutStarted", f"v{version}: {message}")


def restart_candidate(ctx: Pass, reason: str, message: str) -> None:
    """Run the same candidate again from its first stage, on fresh pods and with no carried-over results."""
    version = ctx.status.candidate_version
    assert version is not None
    start_rollout(ctx, version, reason, message)


def retire_candidate(ctx: Pass, reason: str, message: str) -> None:
    """Drop the candidate without judging it (Git moved on): traffic returns to stable."""
    version = ctx.status.candidate_version
    assert version is not None
    stage = ctx.status.stage.name if ctx.status.stage else None
    ctx.record(version, "Superseded", reason, message, stage)
    ctx.emit("Normal", reason, f"v{version} retired: {message}")
    _clear_candidate(ctx)
    ctx.status.analysis = AnalysisStatus()


def rollback(ctx: Pass, outcome: str, reason: str, message: str) -> None:
    """Everything back to stable; the candidate is remembered so it is not retried on its own."""
    status = ctx.status
    version = status.candidate_version
    assert version is not None
    stage = status.stage.name if status.stage else None
    where = f" at stage {stage}" if stage else ""
    text = f"v{version} rolled back{where}: {message}"
    ctx.record(version, outcome, reason, message, stage, metrics=deciding(status.analysis.metrics), lineage=True)
    ctx.emit("Warning", reason, text)
    _clear_candidate(ctx)
    status.rejected_version = version
    status.phase = Phase.ROLLED_BACK
    status.message = text
    if outcome == "RolledBack":
        ask(ctx, "onRollback", version, outcome)
    ask(ctx, "postRollout", version, outcome)


def fail(ctx: Pass, reason: str, message: str) -> None:
    """A failed candidate: roll back, or when rollback is manual, stop in Failed with traffic frozen."""
    if ctx.spec.rollback.automatic:
        rollback(ctx, "RolledBack", reason, message)
        return
    status = ctx.status
    version = status.candidate_version
    assert version is not None
    stage = status.stage.name if status.stage else None
    text = f"v{version} failed{f' at stage {stage}' if stage else ''}: {message}; waiting for abort, retry or promote"
    ctx.record(version, "Failed", reason, message, stage, metrics=deciding(status.analysis.metrics), lineage=True)
    ctx.emit("Warning", reason, text)
    status.phase = Phase.FAILED
    status.message = text


def promote(ctx: Pass, reason: str, message: str) -> None:
    """The candidate becomes stable; the old stable keeps full capacity until the new one is ready.

    With ``spec.rollback.bakeTime`` or ``scaleDownDelay`` the old stable
    stays warm longer, and with a bake time the new one is judged first
    (``engine.bake``); postRollout is called once the promotion stands.
    """
    status = ctx.status
    version = status.candidate_version
    assert version is not None
    previous = status.stable_version
    evidence = evidence_for(ctx, version)
    metrics = deciding(evidence.metrics) if evidence is not None else None
    ctx.record(version, "Promoted", reason, message, metrics=metrics, lineage=True)
    ctx.emit("Normal", "Promoted", f"v{version} promoted to stable: {message}")
    _clear_candidate(ctx)
    status.analysis = AnalysisStatus()
    status.stable_version = version
    status.retiring_version = previous if previous != version else None
    status.rejected_version = None
    status.phase = Phase.SUCCEEDED
    status.message = f"v{version} is stable"
    start_bake(ctx, version, previous)
    if status.phase != Phase.BAKING:
        ask(ctx, "postRollout", version, "Promoted")
