"""The bake: after a promotion, judge the new stable version while the previous one stays warm.

Why: a promotion used to be final, and the previous version went to zero at
once, so a fault that shows only at 100% (or starts after the promotion)
meant a slow re-rollout on cold pods.  With ``spec.rollback.bakeTime`` the
previous version keeps its full capacity, serving nobody, and the new stable
version is checked every analysis interval:

- against the absolute bounds (``min``/``max``), on its own counts pooled
  since the promotion;
- against the previous version's counts pooled over the last stage that
  judged the two side by side (``status.lastJudged``): there is no live
  baseline at 100%, so those counts are frozen into the bake's pools and the
  same sequential test runs on them (``RunAnalysis.frozen_baseline``).

A failed check (a sequential fail, or ``failureLimit`` threshold fails)
rolls back at once: the warm version becomes stable again and the route
moves to it in the same pass, with no pod to start.  The failed version is
drained: the route names it (at weight 0) until its pods are gone, so no
router sends a user to it meanwhile.  A bake that ends without a failed check
stands; the previous version is scaled to zero at ``scaleDownAt`` (bake time
or ``scaleDownDelay``, whichever is longer) and ``revisionHistoryLimit``
then applies to it as to any old version.
"""

from __future__ import annotations

from datetime import timedelta

from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.api.status import (
    AnalysisStatus,
    BakeStatus,
    DecidingMetric,
    MetricPool,
    MetricResult,
    Phase,
    PooledPart,
    StageEvidence,
    VersionCounts,
)
from modelrelease.engine.actions import RunAnalysis
from modelrelease.engine.clock import elapsed_since, format_time, parse_time
from modelrelease.engine.context import Pass
from modelrelease.engine.hooks import ask
from modelrelease.engine.verdicts import complete_results, describe_failures, record_check, sequential_failures

BAKE_STAGE = "bake"
"""The stage name bake checks and bake decisions are recorded under."""


def bake_times(spec: ModelReleaseSpec) -> tuple[timedelta, timedelta]:
    """(bake time, how long the previous version stays warm): the second is never shorter than the first."""
    rollback = spec.rollback
    bake = parse_duration(rollback.bake_time) if rollback.bake_time else timedelta(0)
    delay = parse_duration(rollback.scale_down_delay) if rollback.scale_down_delay else timedelta(0)
    return bake, max(bake, delay)


def deciding(metrics: list[MetricResult]) -> list[DecidingMetric]:
    """The values history keeps of a check: name, verdict, both versions' values, samples."""
    return [
        DecidingMetric(name=m.name, verdict=m.verdict, candidate=m.candidate, baseline=m.baseline, samples=m.samples)
        for m in metrics
    ]


def has_baseline_counts(metrics: list[MetricResult]) -> bool:
    """Whether a stage's results hold the stable version's counts: only then are they a bake baseline."""
    return any(
        part.stable is not None and part.stable.denominator > 0
        for m in metrics
        if m.pool is not None
        for part in m.pool.parts
    )


def keep_evidence(ctx: Pass, version: int, stage: str) -> None:
    """At the end of a judged stage: its results become the promotion's "why", and the bake's baseline."""
    metrics = ctx.status.analysis.metrics
    if metrics and has_baseline_counts(metrics):
        ctx.status.last_judged = StageEvidence(stage=stage, version=version, metrics=list(metrics))


def evidence_for(ctx: Pass, version: int) -> StageEvidence | None:
    evidence = ctx.status.last_judged
    return evidence if evidence is not None and evidence.version == version else None


def _frozen(result: MetricResult) -> MetricResult | None:
    """A bake's starting pool for one metric: the stable version's counts, the new stable's at zero."""
    if result.pool is None:
        return None
    parts = [
        PooledPart(part=part.part, candidate=VersionCounts(), stable=part.stable)
        for part in result.pool.parts
        if part.stable is not None
    ]
    if not parts:
        return None
    return MetricResult(
        name=result.name,
        baseline=result.baseline,
        verdict="inconclusive",
        message="no bake check yet",
        pool=MetricPool(parts=parts),
    )


def start_bake(ctx: Pass, version: int, previous: int | None) -> None:
    """Called by ``promote``: keep ``previous`` warm and, with a bake time, judge ``version`` from here."""
    bake, warm = bake_times(ctx.spec)
    evidence = evidence_for(ctx, version)
    ctx.status.last_judged = None
    if previous is None or previous == version or warm <= timedelta(0):
        return
    seeded = [frozen for m in (evidence.metrics if evidence else []) if (frozen := _frozen(m)) is not None]
    ctx.status.bake = BakeStatus(
        state="Baking" if bake > timedelta(0) else "Passed",
        version=version,
        previous_version=previous,
        started_at=ctx.stamp,
        ends_at=format_time(ctx.now + bake),
        scale_down_at=format_time(ctx.now + warm),
        baseline_stage=evidence.stage if evidence is not None and seeded else None,
    )
    if bake <= timedelta(0):
        return
    ctx.status.phase = Phase.BAKING
    ctx.status.analysis = AnalysisStatus(metrics=seeded)
    ctx.status.message = _baking_message(ctx.status.bake)
    baseline = f"v{previous}'s counts in stage {evidence.stage}" if evidence and seeded else "absolute bounds only"
    ctx.emit(
        "Normal",
        "BakeStarted",
        f"v{version} bakes until {ctx.status.bake.ends_at} against {baseline}; v{previous} kept warm, no traffic",
    )


def _baking_message(bake: BakeStatus) -> str:
    return f"v{bake.version} baking until {bake.ends_at}; v{bake.previous_version} kept warm at full capacity"


def advance_bake(ctx: Pass) -> None:
    """One pass of a running bake: a check when one is due, a rollback on a failed one, the end when time is up."""
    status = ctx.status
    bake = status.bake
    assert bake is not None and bake.state == "Baking"
    status.message = _baking_message(bake)
    spec = ctx.spec.analysis
    since = elapsed_since(status.analysis.last_check_at or bake.started_at, ctx.now)
    if since is not None and since >= parse_duration(spec.interval):
        result = ctx.observations.analysis_of(bake.version)
        if result is None:
            ctx.actions.append(
                RunAnalysis(
                    candidate_version=bake.version,
                    baseline_version=bake.previous_version,
                    stage=BAKE_STAGE,
                    interval=spec.interval,
                    since=bake.started_at,
                    at=ctx.stamp,
                    previous=tuple(status.analysis.metrics),
                    frozen_baseline=True,
                )
            )
            return  # the end of the bake waits for this check's verdict
        status.analysis = record_check(status.analysis, complete_results(spec.metrics, result.metrics), ctx.stamp)
        ctx.checked = status.analysis.last_verdict
        if status.analysis.last_verdict == "fail":
            evidence = sequential_failures(status.analysis.metrics)
            if evidence:
                rollback_bake(ctx, "RolledBack", "BakeFailed", f"sequential test failed: {evidence}")
                return
            details = describe_failures(status.analysis.metrics)
            if status.analysis.failures >= spec.failure_limit:
                limit = spec.failure_limit
                rollback_bake(
                    ctx,
                    "RolledBack",
                    "BakeFailed",
                    f"{status.analysis.failures} failed checks (limit {limit}): {details}",
                )
                return
            ctx.emit("Warning", "CheckFailed", f"v{bake.version} bake: {details}")
    if ctx.now >= parse_time(bake.ends_at):
        pass_bake(ctx, "BakePassed", f"no failed check in {ctx.spec.rollback.bake_time} ({_counts(status.analysis)})")


def _counts(analysis: AnalysisStatus) -> str:
    return (
        f"{analysis.passed} passed, {analysis.failures} failed, {analysis.inconclusive} inconclusive "
        f"of {analysis.checks} checks"
    )


def pass_bake(ctx: Pass, reason: str, message: str) -> None:
    """The promotion stands: the previous version stays warm until ``scaleDownAt``, then goes to zero."""
    status = ctx.status
    bake = status.bake
    assert bake is not None
    ctx.record(
        bake.version, "BakePassed", reason, message, BAKE_STAGE, metrics=deciding(status.analysis.metrics), lineage=True
    )
    ctx.emit("Normal", reason, f"v{bake.version} passed its bake: {message}")
    status.bake = bake.model_copy(update={"state": "Passed"})
    status.analysis = AnalysisStatus()
    status.phase = Phase.SUCCEEDED
    status.message = f"v{bake.version} is stable"
    ask(ctx, "postRollout", bake.version, "Promoted")


def rollback_bake(ctx: Pass, outcome: str, reason: str, message: str) -> None:
    """Back to the warm previous version in this pass; the baked version is drained, then scaled to zero."""
    status = ctx.status
    bake = status.bake
    assert bake is not None
    previous = bake.previous_version
    text = f"v{bake.version} rolled back during its bake: {message}; v{previous} (kept warm) serves again"
    ctx.record(
        bake.version, outcome, reason, message, BAKE_STAGE, metrics=deciding(status.analysis.metrics), lineage=True
    )
    ctx.emit("Warning", reason, text)
    status.stable_version = previous
    status.retiring_version = None
    status.rejected_version = bake.version
    status.bake = bake.model_copy(update={"state": "RolledBack"})
    status.phase = Phase.ROLLED_BACK
    status.message = text
    if outcome == "RolledBack":
        ask(ctx, "onRollback", bake.version, outcome)
    ask(ctx, "postRollout", bake.version, outcome)


def follow_spec(ctx: Pass) -> None:
    """Git moved during a bake: back to the warm version (a revert), or the bake ends and the new rollout starts."""
    status = ctx.status
    bake = status.bake
    if bake is None or bake.state != "Baking" or status.phase != Phase.BAKING:
        return
    wanted = ctx.spec.model.version
    if wanted == bake.version:
        return
    if wanted == bake.previous_version:
        rollback_bake(ctx, "Superseded", "SpecReverted", f"spec.model.version is back to v{wanted}")
        status.rejected_version = None
        status.phase = Phase.SUCCEEDED
        status.message = f"v{wanted} is stable"
        return
    ctx.record(
        bake.version, "BakeInterrupted", "VersionChanged", f"spec.model.version changed to v{wanted}", BAKE_STAGE
    )
    status.bake = None
    status.analysis = AnalysisStatus()
    status.phase = Phase.SUCCEEDED


def abort_or_promote(ctx: Pass, kind: str) -> str | None:
    """A request during a bake: abort rolls back to the warm version, promote ends the bake now."""
    if kind == "abort":
        rollback_bake(ctx, "Aborted", "AbortRequested", "aborted by request")
        return None
    if kind == "promote":
        pass_bake(ctx, "PromoteRequested", "bake ended by request")
        return None
    return f"the release is baking v{ctx.status.bake.version if ctx.status.bake else '?'}: only abort or promote apply"


def tend_bake(ctx: Pass) -> None:
    """Forget a bake whose previous version may go (``scaleDownAt`` passed) or whose failed version is drained."""
    status = ctx.status
    bake = status.bake
    if bake is None:
        return
    if bake.state == "Passed":
        if status.stable_version != bake.version or ctx.now >= parse_time(bake.scale_down_at):
            ctx.emit("Normal", "Retired", f"v{bake.previous_version} scaled down: v{bake.version}'s bake is over")
            status.bake = None
    elif bake.state == "RolledBack":
        failed = ctx.observations.deployment(bake.version)
        if status.candidate_version is not None or failed is None or (failed.desired == 0 and failed.ready == 0):
            status.bake = None


def warm_version(ctx: Pass) -> int | None:
    """The previous version kept at full capacity while a bake runs or until its scale-down delay ends."""
    bake = ctx.status.bake
    if bake is None or bake.state == "RolledBack" or ctx.status.stable_version != bake.version:
        return None
    return bake.previous_version


def route_partner(ctx: Pass) -> int | None:
    """A version that has pods but must get no user (the route names it at weight 0), or None.

    The warm previous version once the new stable is at full capacity (before
    that, both serve, as in any handover); after a bake rollback, the failed
    version until its pods are gone.
    """
    bake = ctx.status.bake
    if bake is None:
        return None
    if bake.state == "RolledBack":
        return bake.version if ctx.status.stable_version == bake.previous_version else None
    warm = warm_version(ctx)
    return warm if warm is not None and ctx.status.retiring_version is None else None
