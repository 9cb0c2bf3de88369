"""``decide``: one pure pass of the rollout state machine.

The handler calls it with what it read, applies the actions, writes the
status, and, when the actions ask for a smoke test or an analysis check,
runs it and calls ``decide`` again with the result and the returned status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.api.status import ModelReleaseStatus, Phase
from modelrelease.engine.actions import Action, ConsumeRequest, EmitEvent, RunAnalysis, RunSmoke
from modelrelease.engine.bake import advance_bake, follow_spec, tend_bake
from modelrelease.engine.clock import as_utc
from modelrelease.engine.context import EngineSettings, Pass
from modelrelease.engine.desired import desired_actions, finish_handover
from modelrelease.engine.hooks import handle_answers
from modelrelease.engine.lifecycle import restart_candidate, retire_candidate, start_rollout
from modelrelease.engine.observations import Observations
from modelrelease.engine.phases import ACTIVE_PHASES, check_transition
from modelrelease.engine.requests import handle_requests
from modelrelease.engine.serving_hash import serving_hash
from modelrelease.engine.stages import advance_candidate
from modelrelease.engine.summary import settle


@dataclass(frozen=True)
class Decision:
    status: ModelReleaseStatus
    actions: tuple[Action, ...]

    def follow_up(self) -> RunSmoke | RunAnalysis | None:
        """The measurement the engine wants before it can go on, if any (at most one per pass)."""
        return next((a for a in self.actions if isinstance(a, RunSmoke | RunAnalysis)), None)

    def followed_by(self, second: Decision) -> Decision:
        """One pass made of two calls: this one's events and consumed requests, then everything of the second.

        The second call starts from this call's status, so it never repeats
        those one-off actions; desired state is taken from the second alone.
        """
        once = tuple(a for a in self.actions if isinstance(a, EmitEvent | ConsumeRequest))
        return Decision(status=second.status, actions=once + second.actions)


def decide(
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    observations: Observations,
    now: datetime,
    generation: int,
    settings: EngineSettings | None = None,
) -> Decision:
    ctx = Pass(
        spec=spec,
        status=status.model_copy(deep=True),
        observations=observations,
        now=as_utc(now),
        generation=generation,
        settings=settings or EngineSettings(),
    )
    if ctx.status.stable_version is None or ctx.status.phase == Phase.INITIALIZING:
        _initialize(ctx)
    else:
        _run(ctx)
    finish_handover(ctx)
    tend_bake(ctx)
    settle(ctx)
    ctx.actions.extend(desired_actions(ctx))
    check_transition(status.phase, ctx.status.phase)
    return Decision(status=ctx.status, actions=tuple(ctx.actions))


def _initialize(ctx: Pass) -> None:
    """The first version ever has nothing to be compared with: it becomes stable without stages."""
    status = ctx.status
    wanted = ctx.spec.model.version
    for request in ctx.observations.requests:
        ctx.actions.append(ConsumeRequest(request))
        ctx.emit("Warning", "RequestIgnored", f"{request.kind} ignored: the first version has no rollout")
    if status.stable_version != wanted:
        status.stable_version = wanted
        ctx.emit("Normal", "InitialVersion", f"v{wanted} is the first version: it becomes stable without stages")
    status.phase = Phase.INITIALIZING
    deployment = ctx.observations.deployment(wanted)
    ready = deployment.ready if deployment is not None else 0
    full = ctx.spec.serving.replicas
    if ready >= full:
        status.phase = Phase.SUCCEEDED
        status.message = f"v{wanted} is stable"
        ctx.record(wanted, "Promoted", "InitialVersion", "first version, stable without stages")
        ctx.emit("Normal", "Promoted", f"v{wanted} is stable ({ready}/{full} replicas ready)")
    else:
        status.message = f"waiting for v{wanted} to be ready ({ready}/{full} replicas)"


def _run(ctx: Pass) -> None:
    handle_answers(ctx)
    handle_requests(ctx)
    follow_spec(ctx)
    _reconcile_version(ctx)
    status = ctx.status
    if status.phase == Phase.BAKING and status.candidate_version is None and status.bake is not None:
        advance_bake(ctx)
        return
    if status.candidate_version is None or status.phase not in ACTIVE_PHASES or ctx.started:
        return
    if status.serving_hash != serving_hash(ctx.spec.serving):
        restart_candidate(ctx, "ServingChanged", "spec.serving changed: restarting from the first stage on new pods")
        return
    advance_candidate(ctx)


def _reconcile_version(ctx: Pass) -> None:
    """Make the candidate follow spec.model.version: Git is the source of truth for which version is wanted."""
    status = ctx.status
    wanted = ctx.spec.model.version
    stable = status.stable_version
    if status.candidate_version is not None:
        if wanted == status.candidate_version:
            return
        if wanted == stable:
            retire_candidate(ctx, "SpecReverted", f"spec.model.version is back to the stable v{stable}")
            status.phase = Phase.SUCCEEDED
            status.message = f"v{stable} is stable"
            return
        retire_candidate(ctx, "Superseded", f"spec.model.version changed to v{wanted}")
        start_rollout(ctx, wanted, "VersionChanged", f"replaces the retired candidate; stable is v{stable}")
        return
    if wanted == stable:
        if status.phase == Phase.ROLLED_BACK:
            status.rejected_version = None
            status.phase = Phase.SUCCEEDED
            status.message = f"v{stable} is stable"
            ctx.emit("Normal", "SpecReverted", f"spec.model.version is back to the stable v{stable}")
        return
    if wanted == status.retiring_version:
        # One Deployment cannot be the previous stable at full capacity and a one-replica candidate at once.
        status.message = f"v{wanted} is still handing over to v{stable}; its rollout starts once v{stable} is ready"
        return
    if wanted == status.rejected_version:
        status.message = (
            f"v{wanted} was rolled back; change spec.model.version or annotate modelrelease.io/retry to try it again"
        )
        return
    start_rollout(ctx, wanted, "VersionChanged", f"spec.model.version changed; stable is v{stable}")
