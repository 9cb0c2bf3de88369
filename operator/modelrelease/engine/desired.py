"""The desired state of Deployments and route, recomputed from status on every pass.

Level-triggered on purpose: if the handler crashed after writing status but
before applying everything, the next pass asks for the same objects again.
"""

from __future__ import annotations

from modelrelease.api.status import Phase
from modelrelease.engine.actions import (
    Action,
    DeleteDeployment,
    EnsureDeployment,
    FixedReplicas,
    Replicas,
    ScaleToZero,
    SetRoute,
    WeightedReplicas,
)
from modelrelease.engine.bake import route_partner, warm_version
from modelrelease.engine.context import Pass
from modelrelease.engine.history import versions_by_recency


def candidate_receives_traffic(ctx: Pass) -> bool:
    """Users reach the candidate only once it is ready and its stage's smoke test (if any) passed."""
    status = ctx.status
    if status.candidate_version is None or status.candidate_ready_at is None or status.stage is None:
        return False
    stage = ctx.current_stage()
    if stage is None or status.phase not in (Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL, Phase.FAILED):
        return False
    if ctx.spec.webhooks.pre_rollout is not None and not status.pre_rollout_passed:
        return False
    return stage.smoke is None or status.stage.smoke_passed


def finish_handover(ctx: Pass) -> None:
    """Forget the previous stable once the new one runs at full capacity; only then may it scale down."""
    status = ctx.status
    if status.retiring_version is None:
        return
    stable = ctx.observations.deployment(status.stable_version)
    if stable is not None and stable.ready >= ctx.spec.serving.replicas:
        if status.retiring_version != warm_version(ctx):  # a warm one is scaled down when its bake is over
            ctx.emit(
                "Normal",
                "Retired",
                f"v{status.retiring_version} scaled down: v{status.stable_version} is at full capacity",
            )
        status.retiring_version = None


def desired_actions(ctx: Pass) -> list[Action]:
    status = ctx.status
    full = ctx.spec.serving.replicas
    actions: list[Action] = []
    live: set[int] = set()
    for version in (status.stable_version, status.retiring_version, warm_version(ctx)):
        if version is not None and version not in live:
            actions.append(EnsureDeployment(version=version, role="stable", replicas=FixedReplicas(full)))
            live.add(version)
    candidate = status.candidate_version
    flowing = candidate_receives_traffic(ctx)
    weight = mirror = 0
    match: tuple[dict[str, str], ...] = ()
    if flowing and status.stage is not None:
        weight, mirror = status.stage.weight, status.stage.mirror
        stage = ctx.current_stage()
        match = tuple(dict(m.headers) for m in (stage.match or [])) if stage is not None else ()
    if candidate is not None and candidate not in live:
        replicas: Replicas = FixedReplicas(1)
        if max(weight, mirror) > 0:
            replicas = WeightedReplicas(percent=max(weight, mirror), full=full)
        actions.append(EnsureDeployment(version=candidate, role="canary", replicas=replicas))
        live.add(candidate)
    if status.stable_version is not None:
        actions.append(
            SetRoute(
                stable_version=status.stable_version,
                candidate_version=candidate if candidate is not None else route_partner(ctx),
                weight=weight,
                mirror=mirror,
                match=match,
                retiring_version=status.retiring_version,
            )
        )
    actions.extend(_retire_old_versions(ctx, live))
    return actions


def _retire_old_versions(ctx: Pass, live: set[int]) -> list[Action]:
    """Keep the most recently used old versions at zero for a fast re-rollout; delete the rest."""
    present = {d.version: d for d in ctx.observations.deployments if d.version not in live}
    if not present:
        return []
    recency = versions_by_recency(ctx.status.history)
    ranked = sorted(present, key=lambda v: (recency.index(v) if v in recency else len(recency), -v))
    kept = set(ranked[: ctx.spec.revision_history_limit])
    actions: list[Action] = []
    for version in sorted(present):
        if version not in kept:
            actions.append(DeleteDeployment(version))
        elif present[version].desired > 0:
            actions.append(ScaleToZero(version))
    return actions
