"""Phase, conditions and message: what ``kubectl get`` and ``kubectl wait`` read.

The phase of an active candidate is derived each pass from why it is (not)
moving, so it can never disagree with the reason in the Progressing condition.
"""

from __future__ import annotations

from modelrelease.api.status import Condition, ConditionStatus, Phase
from modelrelease.engine.conditions import ANALYSIS, PROGRESSING, READY, find_condition, set_condition
from modelrelease.engine.context import Pass, Wait
from modelrelease.engine.phases import ACTIVE_PHASES

_PHASE_FOR_WAIT = {
    Wait.NONE: Phase.PROGRESSING,
    Wait.PAUSED: Phase.PAUSED,
    Wait.PAUSED_BY_REQUEST: Phase.PAUSED,
    Wait.NO_DATA: Phase.PAUSED,
    Wait.HELD: Phase.PAUSED,
    Wait.APPROVAL: Phase.AWAITING_APPROVAL,
    Wait.CONFIRMATION: Phase.AWAITING_APPROVAL,
}

_WAIT_WORDS = {
    Wait.PAUSED: "paused by spec.paused",
    Wait.PAUSED_BY_REQUEST: "paused by request (modelrelease.io/resume continues)",
    Wait.NO_DATA: "paused: analysis has had no data for too long; resumes when metrics return",
}


def settle(ctx: Pass) -> None:
    status = ctx.status
    active = status.candidate_version is not None and status.phase in ACTIVE_PHASES
    if active and not ctx.started:
        status.phase = _PHASE_FOR_WAIT[ctx.wait]
        status.message = _active_message(ctx)
    elif active:
        status.message = f"v{status.candidate_version} starting"
    status.observed_generation = ctx.generation
    _set_conditions(ctx, active)


def _active_message(ctx: Pass) -> str:
    status = ctx.status
    stage = status.stage
    where = f"stage {stage.name} ({stage.index + 1}/{len(ctx.spec.stages)})" if stage else "no stage"
    detail = "; ".join(part for part in (_WAIT_WORDS.get(ctx.wait, ""), ctx.waiting_for) if part) or "advancing"
    return f"v{status.candidate_version} {where}: {detail}"


def _set_conditions(ctx: Pass, active: bool) -> None:
    status = ctx.status
    stamp, generation = ctx.stamp, ctx.generation
    ready_status, ready_reason, ready_message = _readiness(ctx)
    conditions = set_condition(status.conditions, READY, ready_status, ready_reason, ready_message, stamp, generation)
    progressing, reason = _progressing(ctx, active)
    conditions = set_condition(conditions, PROGRESSING, progressing, reason, status.message, stamp, generation)
    status.conditions = _analysis_condition(ctx, conditions, active)


def _analysis_condition(ctx: Pass, conditions: list[Condition], active: bool) -> list[Condition]:
    """The verdict of the latest check of this rollout.

    A new stage starts with no checks of its own; the condition keeps the
    last verdict until the stage's first check, so it does not flicker to
    Unknown (and reset lastTransitionTime) at every stage boundary.
    """
    analysis = ctx.status.analysis
    verdict = analysis.last_verdict or ctx.checked
    previous = find_condition(conditions, ANALYSIS)
    if verdict is None and active and not ctx.started and previous is not None:
        status, reason = previous.status, previous.reason
    else:
        status = "True" if verdict == "pass" else "False" if verdict == "fail" else "Unknown"
        reason = {"pass": "ChecksPassing", "fail": "CheckFailed", "inconclusive": "NoData"}.get(
            verdict or "", "NoChecks"
        )
    message = (
        f"{analysis.passed} passed, {analysis.failures} failed, "
        f"{analysis.inconclusive} inconclusive of {analysis.checks} checks in this stage"
    )
    return set_condition(conditions, ANALYSIS, status, reason, message, ctx.stamp, ctx.generation)


def _readiness(ctx: Pass) -> tuple[ConditionStatus, str, str]:
    """Ready means users are served at full capacity, by the stable or, during a handover, the previous one."""
    status = ctx.status
    full = ctx.spec.serving.replicas
    stable = ctx.observations.deployment(status.stable_version)
    ready = stable.ready if stable is not None else 0
    counts = f"v{status.stable_version}: {ready}/{full} replicas ready"
    if ready >= full:
        return "True", "StableAvailable", counts
    retiring = ctx.observations.deployment(status.retiring_version)
    if retiring is not None and retiring.ready >= full:
        return "True", "HandoverInProgress", f"{counts}; v{status.retiring_version} serves until it is"
    return "False", "StableNotReady", counts


def _progressing(ctx: Pass, active: bool) -> tuple[ConditionStatus, str]:
    phase = ctx.status.phase
    if active:
        if ctx.started or ctx.wait is Wait.NONE:
            return "True", "RolloutProgressing"
        return "False", ctx.wait.value
    if phase == Phase.INITIALIZING:
        return "True", "Initializing"
    if phase == Phase.BAKING:
        return "True", "Baking"
    return "False", {
        Phase.SUCCEEDED: "RolloutComplete",
        Phase.ROLLED_BACK: "RolledBack",
        Phase.FAILED: "RolloutFailed",
    }.get(phase, phase.value)
