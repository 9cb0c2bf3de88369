"""Moving an active candidate through its stages: load, smoke, analysis, completion.

Order matters and is the safety argument: a failure is looked for first (it
rolls back even when paused), then readiness gates all traffic, smoke gates
the stage's traffic, and a stage completes only when every condition holds
on the same pass and nothing (pause, missing data, holdAt, approval) holds it.
A call that completes a stage asks for no measurement: the handler's second
call would otherwise run in the next stage on this one's observations.
"""

from __future__ import annotations

from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import ModelReleaseSpec, Stage
from modelrelease.engine.actions import RunAnalysis, RunSmoke
from modelrelease.engine.bake import deciding, keep_evidence
from modelrelease.engine.clock import as_utc, elapsed_since, format_time, parse_time
from modelrelease.engine.context import Pass, Wait
from modelrelease.engine.hooks import awaiting_confirmation, pre_rollout_cleared
from modelrelease.engine.lifecycle import enter_stage, fail, promote, restart_candidate
from modelrelease.engine.verdicts import (
    complete_results,
    describe_failures,
    record_check,
    sequential_failures,
    smoke_failure,
)


def has_traffic(stage: Stage) -> bool:
    """Stages that send (or mirror) users to the candidate are the ones analysis can judge."""
    return (stage.weight or 0) > 0 or (stage.mirror or 0) > 0


def required_checks(ctx: Pass, stage: Stage) -> int:
    """Passing checks the current pass's stage needs (``checks_needed``)."""
    return checks_needed(ctx.spec, stage)


def checks_needed(spec: ModelReleaseSpec, stage: Stage) -> int:
    """Passing checks a stage needs; the full stage (weight 100) needs none unless it asks.

    At 100% the stable version serves nobody, so every metric that compares
    with it is inconclusive and the stage would stall forever; the candidate
    was judged against the stable version in the stages before, and reaching
    100% is the promotion itself.
    """
    if stage.min_checks is not None:
        return stage.min_checks if has_traffic(stage) else 0
    if not has_traffic(stage) or stage.weight == 100:
        return 0
    return spec.analysis.min_checks


def advance_candidate(ctx: Pass) -> None:
    version = ctx.status.candidate_version
    assert version is not None
    if ctx.paused:
        ctx.wait = ctx.pause_wait
    model = ctx.observations.model_of(version)
    if model is not None and model.state == "FAILED":
        fail(ctx, "ModelLoadFailed", f"TF Serving could not load v{version}: {model.message or 'no message'}")
        return
    _forget_readiness_if_recreated(ctx, version)
    if ctx.status.candidate_ready_at is None and not _await_ready(ctx, version):
        return
    if not pre_rollout_cleared(ctx, version):
        return
    if not ctx.spec.stages:
        if not ctx.paused:
            promote(ctx, "NoStages", "the release defines no stages")
        return
    stage = _locate_stage(ctx)
    if stage is None:
        return
    if stage.smoke is not None and not _smoke_passed(ctx, version, stage):
        return
    _observe_route(ctx)
    if has_traffic(stage):
        _stamp_weight_reached(ctx, stage)
        if _analyse(ctx, version, stage):
            return
    _try_complete(ctx, version, stage)


def _forget_readiness_if_recreated(ctx: Pass, version: int) -> None:
    """A candidate whose Deployment is gone, or was created after it became ready, is not ready any more.

    Its pods are new (someone deleted the Deployment; this pass recreates
    it): no user traffic until they are ready and their model AVAILABLE
    again, and the load deadline counts from their creation.  Results
    already earned for this version (smoke, checks) stay: the model is the same.
    """
    ready_at = ctx.status.candidate_ready_at
    if ready_at is None:
        return
    deployment = ctx.observations.deployment(version)
    if deployment is not None:
        created = deployment.created_at
        if created is None or as_utc(created) <= parse_time(ready_at):
            return
    ctx.status.candidate_ready_at = None
    if ctx.status.stage is not None:
        ctx.status.stage.actual_weight = 0  # its pods are gone: it serves nobody until the new ones are ready
    what = "was deleted" if deployment is None else "was recreated"
    ctx.emit(
        "Warning", "CandidateRestarted", f"v{version}'s Deployment {what}: no traffic until its new pods are ready"
    )


def _await_ready(ctx: Pass, version: int) -> bool:
    """True once the candidate's pods are ready and its model AVAILABLE; fails it past the load deadline.

    The deadline counts from the pods' creation as observed (``ModelLoad.loading_since``);
    while no pod was asked for yet (the operator was down before it applied
    the Deployment) no deadline runs.
    """
    deployment = ctx.observations.deployment(version)
    model = ctx.observations.model_of(version)
    available = model is not None and model.state == "AVAILABLE"
    pods_ready = deployment is not None and deployment.ready >= 1
    if pods_ready and available and not ctx.paused:
        ctx.status.candidate_ready_at = ctx.stamp
        if ctx.status.stage is not None:
            ctx.status.stage.entered_at = ctx.stamp
        ctx.emit("Normal", "CandidateReady", f"v{version} is ready and its model AVAILABLE")
        return True
    state = model.state if model is not None else "unknown"
    since = model.loading_since if model is not None else None
    elapsed = ctx.now - as_utc(since) if since is not None else None
    timeout = ctx.settings.load_timeout
    if not available and elapsed is not None and elapsed > timeout:
        fail(ctx, "ModelLoadTimeout", f"v{version}'s model was not AVAILABLE within {timeout} (state {state})")
        return False
    ready = deployment.ready if deployment is not None else 0
    ctx.waiting_for = f"waiting for v{version} to load ({ready} pods ready, model {state})"
    return False


def _locate_stage(ctx: Pass) -> Stage | None:
    """The current stage's spec; if the stages were edited away under it, start the candidate over."""
    found = ctx.current_stage()
    status_stage = ctx.status.stage
    if found is not None or status_stage is None:
        return found
    for index, stage in enumerate(ctx.spec.stages):
        if stage.name == status_stage.name:
            status_stage.index = index
            return stage
    restart_candidate(ctx, "StagesChanged", f"stage {status_stage.name} is no longer in spec.stages")
    return None


def _smoke_passed(ctx: Pass, version: int, stage: Stage) -> bool:
    status_stage = ctx.status.stage
    assert status_stage is not None and stage.smoke is not None
    if status_stage.smoke_passed:
        return True
    result = ctx.observations.smoke_of(version)
    if result is not None and result.inconclusive is not None:
        return _smoke_inconclusive(ctx, version, result.inconclusive)
    if result is not None:
        why = smoke_failure(result, stage.smoke)
        if why is not None:
            fail(ctx, "SmokeFailed", why)
            return False
        status_stage.smoke_passed = True
        status_stage.smoke_inconclusive = 0
        # The stage's traffic starts now, so its duration and checks count from here.
        status_stage.entered_at = ctx.stamp
        message = f"accuracy {result.accuracy:.4g} on {result.count} golden examples"
        ctx.record(version, "SmokePassed", "SmokePassed", message, stage.name)
        ctx.emit("Normal", "SmokePassed", f"v{version} smoke test passed: {message}")
        return True
    if ctx.paused:
        ctx.waiting_for = "paused before the smoke test"
        return False
    golden = stage.smoke.golden_set.config_map if stage.smoke.golden_set else f"{ctx.spec.model.name}-golden"
    ctx.actions.append(RunSmoke(version=version, golden_set=golden, min_accuracy=stage.smoke.min_accuracy))
    ctx.waiting_for = "waiting for the smoke test"
    return False


def _smoke_inconclusive(ctx: Pass, version: int, reason: str) -> bool:
    """A smoke run without a complete set of answers: try again next pass, fail after ``smoke_attempts`` in a row."""
    status_stage = ctx.status.stage
    assert status_stage is not None
    status_stage.smoke_inconclusive += 1
    attempts, limit = status_stage.smoke_inconclusive, ctx.settings.smoke_attempts
    if attempts >= limit:
        fail(ctx, "SmokeFailed", f"smoke test got no complete set of answers in {attempts} runs in a row: {reason}")
        return False
    ctx.emit(
        "Warning", "SmokeInconclusive", f"v{version} smoke run {attempts}/{limit} got no answer, retrying: {reason}"
    )
    ctx.waiting_for = f"smoke test inconclusive ({attempts}/{limit}), retrying"
    return False


def _observe_route(ctx: Pass) -> None:
    route = ctx.observations.route
    if ctx.status.stage is not None:
        ctx.status.stage.actual_weight = min(100, max(0, route.weight)) if route is not None else 0


def _stamp_weight_reached(ctx: Pass, stage: Stage) -> None:
    """Stamp ``reachedAt`` the first time the router reports the stage's weight: the stage's clock starts there.

    Like an Argo Rollouts ``setWeight`` step, a stage's duration is spent at its
    weight: a stage whose new pods take longer to start than its duration (a
    busy node, a large model) would otherwise end the moment its weight is
    reached, its time spent at a smaller one.  The stage's pooled counts
    start here too (``_analyse``): one traffic split per pool, so a drift
    common to both versions cancels out.
    Stamped once per stage, so a pass that changes nothing writes nothing.
    """
    status_stage = ctx.status.stage
    assert status_stage is not None
    if status_stage.reached_at is None and _route_reached(ctx, stage):
        status_stage.reached_at = ctx.stamp


def _route_reached(ctx: Pass, stage: Stage) -> bool:
    route = ctx.observations.route
    if route is None:
        return False
    if route.reached is not None:
        return route.reached
    return route.weight >= (stage.weight or 0) and route.mirror >= (stage.mirror or 0)


def _analyse(ctx: Pass, version: int, stage: Stage) -> bool:
    """Run or record a check when one is due; True when it ended the rollout.

    Checks are due an interval apart from the stage's entry, once its
    weight was reached (``reachedAt``): its counts are pooled from there.  A fail of a
    sequentially judged metric rolls back at once (it is evidence at the
    level ``spec.analysis.confidence`` sets, whatever the number of checks);
    threshold fails add up to ``failureLimit``.
    """
    status = ctx.status
    assert status.stage is not None and status.stable_version is not None
    analysis_spec = ctx.spec.analysis
    if status.stage.reached_at is None:
        return False
    since = elapsed_since(status.analysis.last_check_at or status.stage.entered_at, ctx.now)
    if since is not None and since < parse_duration(analysis_spec.interval):
        return False
    result = ctx.observations.analysis_of(version)
    if result is None:
        ctx.actions.append(
            RunAnalysis(
                candidate_version=version,
                baseline_version=status.stable_version,
                stage=stage.name,
                interval=analysis_spec.interval,
                since=status.stage.reached_at,
                at=ctx.stamp,
                previous=tuple(status.analysis.metrics),
            )
        )
        return False
    was_starved = status.analysis.consecutive_inconclusive >= analysis_spec.inconclusive_limit
    status.analysis = record_check(status.analysis, complete_results(analysis_spec.metrics, result.metrics), ctx.stamp)
    analysis = status.analysis
    ctx.checked = analysis.last_verdict
    if analysis.last_verdict == "fail":
        details = describe_failures(analysis.metrics)
        evidence = sequential_failures(analysis.metrics)
        if evidence:
            fail(ctx, "AnalysisFailed", f"sequential test failed: {evidence}")
            return True
        if analysis.failures >= analysis_spec.failure_limit:
            limit = analysis_spec.failure_limit
            fail(ctx, "AnalysisFailed", f"{analysis.failures} failed checks (limit {limit}): {details}")
            return True
        ctx.emit("Warning", "CheckFailed", f"v{version} stage {stage.name}: {details}")
    elif analysis.last_verdict == "inconclusive":
        if analysis.consecutive_inconclusive == analysis_spec.inconclusive_limit:
            ctx.emit(
                "Warning",
                "AnalysisInconclusive",
                f"v{version}: {analysis.consecutive_inconclusive} checks in a row without data; paused until data returns",
            )
    elif was_starved:
        ctx.emit("Normal", "AnalysisResumed", f"v{version}: metrics are back; the release continues")
    return False


def _missing_for_completion(ctx: Pass, stage: Stage) -> list[str]:
    status = ctx.status
    assert status.stage is not None
    missing: list[str] = []
    # A stage with traffic runs its time at its weight (``_stamp_weight_reached``); one without, from its entry.
    clock_start = status.stage.reached_at if has_traffic(stage) else status.stage.entered_at
    if stage.duration:
        elapsed = elapsed_since(clock_start, ctx.now)
        remaining = parse_duration(stage.duration) - elapsed if elapsed is not None else None
        if remaining is None or remaining.total_seconds() > 0:
            # The end time, not the time left: the message then stays the same for
            # the whole stage and a pass that changes nothing writes no status.
            if remaining is None or clock_start is None:
                missing.append(f"{stage.duration} of stage time")
            else:
                ends = parse_time(clock_start) + parse_duration(stage.duration)
                missing.append(f"stage time until {format_time(ends)}")
    if has_traffic(stage):
        required = required_checks(ctx, stage)
        if status.analysis.passed < required:
            missing.append(f"{status.analysis.passed}/{required} passing checks")
        if status.analysis.last_verdict not in (None, "pass"):
            missing.append(f"the latest check was {status.analysis.last_verdict}")
        if not _route_reached(ctx, stage):
            missing.append(f"the router reports {status.stage.actual_weight}% of {stage.weight or 0}%")
    return missing


def _held(ctx: Pass) -> bool:
    hold = ctx.spec.hold_at
    if not hold or ctx.status.stage is None:
        return False
    names = [s.name for s in ctx.spec.stages]
    return hold in names and names.index(hold) <= ctx.status.stage.index


def _try_complete(ctx: Pass, version: int, stage: Stage) -> None:
    status = ctx.status
    assert status.stage is not None
    if status.analysis.consecutive_inconclusive >= ctx.spec.analysis.inconclusive_limit:
        ctx.wait = Wait.NO_DATA
    missing = _missing_for_completion(ctx, stage)
    if missing:
        ctx.waiting_for = "; ".join(missing)
        return
    if ctx.wait is not Wait.NONE:
        return
    if _held(ctx):
        ctx.wait = Wait.HELD
        ctx.waiting_for = f"held at stage {stage.name} by spec.holdAt"
        return
    if stage.approval and not status.stage.approved:
        ctx.wait = Wait.APPROVAL
        ctx.waiting_for = f"waiting for modelrelease.io/approve: {stage.name}"
        return
    if awaiting_confirmation(ctx, version):
        ctx.wait = Wait.CONFIRMATION
        ctx.waiting_for = "waiting for the confirmPromotion webhook to answer 2xx"
        return
    _complete_stage(ctx, version, stage)


def _complete_stage(ctx: Pass, version: int, stage: Stage) -> None:
    """Record the stage as passed and enter the next one (or promote); a check asked for this pass is withdrawn.

    The stage passed on what it had, so that check could change nothing; and
    the handler would run it and call ``decide`` again, in the next stage, with
    observations made for this one: the route's ``reached`` judged against
    this stage's plan would start the next stage's clock at its entry.
    """
    status = ctx.status
    assert status.stage is not None
    ctx.actions[:] = [action for action in ctx.actions if not isinstance(action, RunAnalysis)]
    index = status.stage.index
    passed = status.analysis.passed
    ctx.record(
        version,
        "StageCompleted",
        "StagePassed",
        f"stage {stage.name} passed ({passed} passing checks)",
        stage.name,
        metrics=deciding(status.analysis.metrics),
    )
    if has_traffic(stage):
        keep_evidence(ctx, version, stage.name)
    if index + 1 < len(ctx.spec.stages):
        enter_stage(ctx, index + 1)
        following = ctx.spec.stages[index + 1].name
        ctx.emit("Normal", "StageAdvanced", f"v{version}: stage {stage.name} passed; entering {following}")
        return
    promote(ctx, "AllStagesPassed", f"all {len(ctx.spec.stages)} stages passed")
