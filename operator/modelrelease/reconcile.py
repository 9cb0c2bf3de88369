"""One reconcile pass of one release: read the world, ask the engine, measure if asked, write status, act.

Why status is written before the actions are applied: the status patch is
the one conflict-checked write (it carries the resourceVersion the pass
read).  If another writer got there first the pass stops before touching
anything, and the next pass decides again from fresh data; the actions are
desired state recomputed from status every pass, so a crash after the
status write is repaired by the next pass.  The decision's events are
posted after the applies, also when an apply fails (the next pass sees the
status already written and would not emit them again); a crash before they
are posted loses them, never duplicates them.  They are not posted first:
the first write after the status write is where a frozen leader's request
can slip past fencing (measured by the chaos trial of a SIGSTOPped leader),
and there a lost event is better than a stale write.  The patch is
sent on every pass that goes on to apply anything, even when the status did
not change: then it carries only the precondition, which the API server
checks without writing anything (an unchanged release makes no write).  A
pass that would write nothing at all (status unchanged, every object as the
watch cache holds it, no event, scale or request to consume:
``apply.writes_pending``) sends no patch either: there is nothing to fence.

Why an ``OwnershipConflict`` condition: an object with one of the release's
names that the release does not own (a user's own Service called like it)
is never applied over; the pass stops there and says so once, with a
Warning event and the condition, until the object is removed or renamed.
Objects the API server refuses (a ``podTemplate`` no Deployment may have)
get an ``ApplyFailed`` condition the same way, retried every minute rather
than every few seconds: the same objects are refused until something changes.

Why a ``RouteReady`` condition: a router that edits a user's object (an
HTTPRoute, a VirtualService) cannot act while it is missing, malformed or
not accepted; the pass then moves no traffic, the condition says why, one
Warning event is posted when the problem is new, and the stage waits.

Why a finalizer: such a router's object is the user's, not the release's,
so no owner reference cleans it up.  A release whose router edits one gets
the ``modelrelease.io/route`` finalizer; on deletion the pass puts the
object back (100% stable, the operator's rules removed) and then removes
the finalizer, also when the object is gone by then.  ``status.managedRoute``
remembers which object was edited, so a change of router or of route name
puts the previous one back the same way.

Why the engine is asked twice when measuring: the engine decides *whether*
a smoke test or an analysis check is due; the measurement is I/O, so the
handler runs it and asks again with the result (``Decision.followed_by``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from modelrelease.api import InvalidRelease, ModelReleaseSpec, ModelReleaseStatus, Phase, parse_release
from modelrelease.api.duration import parse_duration
from modelrelease.api.status import Condition, ManagedRouteStatus
from modelrelease.apply import RouteIntent, apply_actions, post_events, route_intent, writes_pending
from modelrelease.engine import (
    Decision,
    EngineSettings,
    Observations,
    RouteObservation,
    RunAnalysis,
    RunSmoke,
    decide,
)
from modelrelease.engine.clock import format_time
from modelrelease.engine.conditions import find_condition, set_condition
from modelrelease.engine.phases import ACTIVE_PHASES
from modelrelease.kube.client import (
    Kube,
    Manifest,
    OwnershipConflict,
    ReleaseGone,
    StatusConflict,
    describe_api_error,
)
from modelrelease.kube.fencing import LeadershipLost
from modelrelease.logs import set_rollout
from modelrelease.measure import Analyzer, smoke_test
from modelrelease.metrics import (
    ANALYSIS_RESULTS,
    PROMETHEUS_ERRORS,
    PROMOTIONS,
    RECONCILE_SECONDS,
    ROLLBACKS,
    STAGE_TRANSITIONS,
    record_release,
)
from modelrelease.notify import Notifier
from modelrelease.observe import (
    VersionPods,
    current_pods,
    deployment_states,
    model_load,
    read_deployments,
    read_requests,
)
from modelrelease.policy import PrometheusAllowList, ReleasePolicy
from modelrelease.routing.base import Router, RouteState
from modelrelease.webhooks import WebhookRunner

log = logging.getLogger("modelrelease.reconcile")

VALID = "Valid"
ROUTE_READY = "RouteReady"
OBSOLETE_CONDITIONS = frozenset({"RouteSupported"})
"""Conditions earlier versions set that no longer mean anything; dropped from status."""
FINALIZER = "modelrelease.io/route"
OWNERSHIP_CONFLICT = "OwnershipConflict"
APPLY_FAILED = "ApplyFailed"
REFUSALS = frozenset({400, 403, 404, 422})
"""API answers that a retry of the same objects cannot change (invalid, forbidden, no such kind)."""
REFUSED_RETRY = 60.0
"""Seconds before retrying objects the API server refused: it changes only when the release or RBAC does."""
CONFLICT_RETRY = 0.5
"""Seconds before re-reading a release whose status changed under the pass."""
FENCED_RETRY = 1.0
"""Seconds before a pass stopped by fencing is tried again (the scheduler holds it back while it may not act)."""
ERROR_RETRY = 5.0
"""Seconds before retrying a pass the API server refused; the error is an event and a log line."""
WAIT_POLL = 2.0
"""Longest wait while pods start or the model loads, whatever the analysis interval."""
ROUTE_POLL = 5.0
"""Seconds between passes while the route cannot be used: creating or fixing it is not a change to the release."""


@dataclass
class OperatorContext:
    """What every pass shares: the API client, the analyzer, the routers, the engine's knobs, the policy."""

    kube: Kube
    analyzer: Analyzer
    routers: Mapping[str, Router]
    settings: EngineSettings = field(default_factory=EngineSettings)
    policy: ReleasePolicy = field(default_factory=ReleasePolicy)
    webhooks: WebhookRunner = field(default_factory=lambda: WebhookRunner(PrometheusAllowList()))
    notifier: Notifier = field(default_factory=Notifier)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True)
class PassOutcome:
    """What the scheduler needs: the phase for the gauge, and when to run again (None: only on a change)."""

    phase: str | None
    next_in: float | None


async def reconcile(ctx: OperatorContext, namespace: str, name: str) -> PassOutcome:
    started = time.monotonic()
    outcome = "error"
    try:
        result = await _reconcile(ctx, namespace, name)
        outcome = "ok"
        return result
    except StatusConflict:
        outcome = "conflict"
        log.info("status changed during the pass; deciding again from fresh data")
        return PassOutcome(phase=None, next_in=CONFLICT_RETRY)
    except ReleaseGone as gone:
        outcome = "gone"  # its DELETED event stops the release's task; owner references remove its objects
        log.info("%s", gone)
        return PassOutcome(phase=None, next_in=None)
    except LeadershipLost as lost:
        outcome = "fenced"  # stop here; the scheduler runs it again only once this replica may act (it parks it)
        log.warning("pass stopped before writing: %s", lost)
        return PassOutcome(phase=None, next_in=FENCED_RETRY)
    finally:
        RECONCILE_SECONDS.labels(outcome=outcome).observe(time.monotonic() - started)


async def _reconcile(ctx: OperatorContext, namespace: str, name: str) -> PassOutcome:
    kube = ctx.kube
    release = await kube.get_release(namespace, name)
    if release is None:
        return PassOutcome(phase=None, next_in=None)
    if release["metadata"].get("deletionTimestamp"):
        await _finalize(ctx, release)
        return PassOutcome(phase=None, next_in=None)
    try:
        parsed = parse_release(release)
    except InvalidRelease as invalid:
        await _report_unusable(kube, release, "InvalidSpec", f"the release cannot be acted on: {invalid}")
        return PassOutcome(phase=None, next_in=None)
    refusal = ctx.policy.refusal(parsed.spec)
    if refusal is not None:  # checked before anything is applied or queried: modelrelease.policy
        await _report_unusable(kube, release, refusal.reason, refusal.message)
        return PassOutcome(phase=None, next_in=None)
    spec, status = parsed.spec, parsed.status
    router = ctx.routers.get(spec.traffic.router)
    if router is None:
        supported = ", ".join(sorted(ctx.routers))
        message = f"spec.traffic.router {spec.traffic.router} is not supported by this operator (it has: {supported})"
        await _report_unusable(kube, release, "UnsupportedRouter", message)
        return PassOutcome(phase=status.phase.value, next_in=None)
    route_name = router.route_of(spec)
    await _release_previous_route(ctx, release, status, router.name, route_name)
    if route_name and FINALIZER not in (release["metadata"].get("finalizers") or []):
        release = await kube.set_finalizers(release, [*(release["metadata"].get("finalizers") or []), FINALIZER])
    set_rollout(status.candidate_version or status.stable_version, status.stage.name if status.stage else None)
    generation = int(release["metadata"].get("generation") or 1)
    now = ctx.clock()

    observations, candidate_pods = await _observe(ctx, release, spec, status)
    observations, route_state = await _observe_route(ctx, router, release, spec, status, observations, now, generation)
    observations = _with_webhook_answers(ctx, namespace, name, spec, status, observations)
    decision = decide(spec, status, observations, now, generation, ctx.settings)
    decision = await _measure_if_asked(ctx, release, spec, observations, candidate_pods, decision, now, generation)

    metadata = release["metadata"]
    intent = route_intent(router, namespace, name, metadata["uid"], spec, decision.actions)
    stamp = format_time(now)
    managed = ManagedRouteStatus(router=router.name, name=route_name) if route_name else None
    new_status = _with_operator_conditions(decision.status, route_state, managed, stamp, generation)
    route_event = _route_news(status, new_status)
    running = {d.version: d.desired for d in observations.deployments}
    if (
        new_status == status
        and not route_event
        and await _nothing_to_write(ctx, router, release, spec, decision, intent, running)
    ):
        return PassOutcome(phase=new_status.phase.value, next_in=_next_in(spec, new_status, route_state))
    # Conflict-checked on every pass that acts: the status when it changed, else the precondition alone.
    body = new_status.model_dump(by_alias=True, mode="json") if new_status != status else None
    resource_version = await kube.patch_status(namespace, name, metadata["resourceVersion"], body)
    ctx.webhooks.collect(namespace, name, spec, new_status)  # deliveries this pass asked for start now, unawaited
    ctx.notifier.publish(namespace, name, spec, status, new_status, stamp)  # queued, never awaited (notify)
    _count(namespace, name, status, new_status, decision)
    set_rollout(
        new_status.candidate_version or new_status.stable_version, new_status.stage.name if new_status.stage else None
    )
    try:
        try:
            await apply_actions(kube, router, release, spec, decision.actions, intent, running)
        finally:
            await post_events(kube, release, decision.actions)
        if route_event:
            await kube.event(release, "Warning", "RouteNotReady", route_event)
    except OwnershipConflict as conflict:
        problems = {OWNERSHIP_CONFLICT: str(conflict)}
        await _note_apply_problems(kube, release, new_status, resource_version, problems, stamp, generation)
        return PassOutcome(phase=new_status.phase.value, next_in=ERROR_RETRY)
    except ApiException as error:
        message = f"could not apply the release's objects: {describe_api_error(error)}"
        problems = {APPLY_FAILED: message}
        await _note_apply_problems(kube, release, new_status, resource_version, problems, stamp, generation)
        # The API server refusing the objects (a podTemplate the Deployment schema rejects, RBAC) will
        # refuse them again until the release or the cluster changes: retry slowly, not in a loop.
        refused = error.status in REFUSALS
        return PassOutcome(phase=new_status.phase.value, next_in=REFUSED_RETRY if refused else ERROR_RETRY)
    problems = {OWNERSHIP_CONFLICT: "", APPLY_FAILED: ""}
    await _note_apply_problems(kube, release, new_status, resource_version, problems, stamp, generation)
    return PassOutcome(phase=new_status.phase.value, next_in=_next_in(spec, new_status, route_state))


def _next_in(spec: ModelReleaseSpec, status: ModelReleaseStatus, route_state: RouteState | None) -> float | None:
    next_in = next_pass_in(spec, status)
    if route_state is not None and route_state.problem:
        next_in = min(next_in, ROUTE_POLL) if next_in is not None else ROUTE_POLL
    return next_in


async def _nothing_to_write(
    ctx: OperatorContext,
    router: Router,
    release: Manifest,
    spec: ModelReleaseSpec,
    decision: Decision,
    intent: RouteIntent | None,
    running: Mapping[int, int],
) -> bool:
    """A pass with an unchanged status, no apply problem on record and every object as the cache holds it.

    Such a pass writes nothing, so it needs no fencing and skips even the status precondition.
    """
    conditions = decision.status.conditions
    if any((c := find_condition(conditions, kind)) is not None and c.status == "True" for kind in PROBLEM_REASONS):
        return False
    return not await writes_pending(ctx.kube, router, release, spec, decision.actions, intent, running)


def needs_polling(status: ModelReleaseStatus) -> bool:
    """Whether anything can change without the release itself changing (pods starting, analysis due)."""
    return (
        status.phase in ACTIVE_PHASES
        or status.phase == Phase.INITIALIZING
        or status.retiring_version is not None
        or status.observed_generation is None
        or lifecycle_pending(status)
    )


def lifecycle_pending(status: ModelReleaseStatus) -> bool:
    """A bake, a warm previous version waiting for its scale-down, or a webhook delivery: time moves them on."""
    return status.bake is not None or bool(status.webhooks)


def next_pass_in(spec: ModelReleaseSpec, status: ModelReleaseStatus) -> float | None:
    """Seconds until the next pass: the analysis interval while a rollout is judged, sooner while pods start."""
    if not needs_polling(status):
        return None
    interval = parse_duration(spec.analysis.interval).total_seconds()
    starting = status.phase == Phase.INITIALIZING or status.retiring_version is not None
    waiting = status.candidate_version is not None and status.candidate_ready_at is None
    delivering = bool(status.webhooks)  # an answer is collected by the next pass: do not leave it waiting long
    return min(interval, WAIT_POLL) if starting or waiting or delivering else interval


def _with_webhook_answers(
    ctx: OperatorContext,
    namespace: str,
    name: str,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    observations: Observations,
) -> Observations:
    """The answers of the release's finished webhook deliveries (``modelrelease.webhooks``); starts missing ones."""
    answers = ctx.webhooks.collect(namespace, name, spec, status)
    return replace(observations, webhooks=answers) if answers else observations


async def _observe(
    ctx: OperatorContext, release: Manifest, spec: ModelReleaseSpec, status: ModelReleaseStatus
) -> tuple[Observations, VersionPods | None]:
    metadata = release["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    deployments = await read_deployments(ctx.kube, namespace, name, metadata["uid"])
    candidate = status.candidate_version
    model = None
    pods = None
    if candidate is not None and candidate in deployments and status.phase in ACTIVE_PHASES:
        pods = await current_pods(ctx.kube, namespace, name, deployments[candidate])
        expected = int(deployments[candidate].spec.replicas or 0)
        model = await model_load(spec.model.name, pods, expected)
    observations = Observations(
        deployments=deployment_states(deployments),
        model=model,
        requests=read_requests(metadata.get("annotations")),
    )
    return observations, pods


async def _observe_route(
    ctx: OperatorContext,
    router: Router,
    release: Manifest,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    observations: Observations,
    now: datetime,
    generation: int,
) -> tuple[Observations, RouteState | None]:
    """What the data plane does, judged against the route the current status asks for.

    The route the status asks for is whatever the engine's desired state says
    for it; a throw-away ``decide`` without a route observation gives it
    (pure and cheap), so the handler never duplicates the engine's rules.
    """
    if status.stable_version is None:
        return observations, None
    probe = decide(spec, status, replace(observations, requests=()), now, generation, ctx.settings)
    metadata = release["metadata"]
    intent = route_intent(router, metadata["namespace"], metadata["name"], metadata["uid"], spec, probe.actions)
    if intent is None:
        return observations, None
    state = await router.observe(intent.target, intent.plan)
    route = RouteObservation(weight=state.weight, mirror=state.mirror, reached=state.reached and not state.problem)
    return replace(observations, route=route), state


async def _measure_if_asked(
    ctx: OperatorContext,
    release: Manifest,
    spec: ModelReleaseSpec,
    observations: Observations,
    candidate_pods: VersionPods | None,
    decision: Decision,
    now: datetime,
    generation: int,
) -> Decision:
    follow_up = decision.follow_up()
    metadata = release["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    if isinstance(follow_up, RunSmoke):
        smoke = await smoke_test(ctx.kube, namespace, spec, follow_up, candidate_pods)
        log.info("smoke test of v%s: accuracy %.4f on %d examples", smoke.version, smoke.accuracy, smoke.count)
        again = replace(observations, smoke=smoke, requests=())
    elif isinstance(follow_up, RunAnalysis):
        analysis = await ctx.analyzer.check(namespace, name, spec, follow_up, on_result=_count_result)
        verdicts = ", ".join(f"{m.name}={m.verdict}" for m in analysis.metrics)
        log.info("analysis of v%s against v%s: %s", analysis.version, follow_up.baseline_version, verdicts)
        again = replace(observations, analysis=analysis, requests=())
    else:
        return decision
    return decision.followed_by(decide(spec, decision.status, again, now, generation, ctx.settings))


def _count_result(result: Any) -> None:
    ANALYSIS_RESULTS.labels(metric=result.name, verdict=result.verdict).inc()
    if result.verdict == "inconclusive" and "Prometheus" in (result.message or ""):
        PROMETHEUS_ERRORS.inc()


def _with_operator_conditions(
    status: ModelReleaseStatus,
    route: RouteState | None,
    managed: ManagedRouteStatus | None,
    stamp: str,
    generation: int,
) -> ModelReleaseStatus:
    """The engine's status plus what only the handler knows: the spec parsed, the route usable, the route edited."""
    kept = [c for c in status.conditions if c.type not in OBSOLETE_CONDITIONS]
    conditions = set_condition(kept, VALID, "True", "SpecValid", "", stamp, generation)
    if route is not None and route.problem:
        conditions = set_condition(conditions, ROUTE_READY, "False", route.reason, route.problem, stamp, generation)
    elif route is not None and managed is not None:
        conditions = set_condition(conditions, ROUTE_READY, "True", "Accepted", route.message, stamp, generation)
    elif managed is None and find_condition(conditions, ROUTE_READY) is not None:
        conditions = [c for c in conditions if c.type != ROUTE_READY]
    return status.model_copy(update={"conditions": conditions, "managed_route": managed})


PROBLEM_REASONS = {
    OWNERSHIP_CONFLICT: ("ObjectNotOwned", "AllObjectsOwned"),
    APPLY_FAILED: ("RefusedByAPIServer", "Applied"),
}
"""For each apply problem's condition: its reason while the problem lasts, and once it is gone."""


async def _note_apply_problems(
    kube: Kube,
    release: Manifest,
    status: ModelReleaseStatus,
    resource_version: str,
    problems: Mapping[str, str],
    stamp: str,
    generation: int,
) -> None:
    """Set each problem's condition (a message given) or clear it (empty); a Warning event when one is new.

    Written only when a condition changes, in one write conditional on the
    version the pass's own status write left, so a problem that persists
    costs neither a write nor another event on later passes.
    """
    conditions = status.conditions
    news = []
    for kind, message in problems.items():
        on_reason, off_reason = PROBLEM_REASONS[kind]
        previous = find_condition(conditions, kind)
        if message and (previous is None or previous.status != "True" or previous.message != message):
            conditions = set_condition(conditions, kind, "True", on_reason, message, stamp, generation)
            news.append((kind, message))
        elif not message and previous is not None and previous.status == "True":
            conditions = set_condition(conditions, kind, "False", off_reason, "", stamp, generation)
    if conditions == status.conditions:
        return
    metadata = release["metadata"]
    body = status.model_copy(update={"conditions": conditions}).model_dump(by_alias=True, mode="json")
    await kube.patch_status(metadata["namespace"], metadata["name"], resource_version, body)
    for kind, message in news:
        log.warning(message)
        await kube.event(release, "Warning", kind, message)


def _route_news(before: ModelReleaseStatus, after: ModelReleaseStatus) -> str:
    """The route's problem when it is new (so the Warning event is posted once, not every pass)."""
    old = find_condition(before.conditions, ROUTE_READY)
    new = find_condition(after.conditions, ROUTE_READY)
    if new is None or new.status != "False":
        return ""
    if old is None or old.status != "False" or old.message != new.message:
        where = f"stage {after.stage.name}: " if after.stage else ""
        return where + new.message
    return ""


async def _release_previous_route(
    ctx: OperatorContext, release: Manifest, status: ModelReleaseStatus, router: str, route_name: str
) -> None:
    """Put back the object a previous router (or route name) edited, once the release moved away from it."""
    previous = status.managed_route
    if previous is None or (previous.router, previous.name) == (router, route_name):
        return
    old = ctx.routers.get(previous.router)
    if old is not None:
        metadata = release["metadata"]
        log.info("%s %s is no longer the release's route: putting it back", previous.router, previous.name)
        await old.release(metadata["namespace"], metadata["name"], previous.name)


async def _finalize(ctx: OperatorContext, release: Manifest) -> None:
    """The release is being deleted: put back every route object it edited, then let it go."""
    metadata = release["metadata"]
    finalizers = list(metadata.get("finalizers") or [])
    if FINALIZER not in finalizers:
        return
    routes: set[tuple[str, str]] = set()
    managed = (release.get("status") or {}).get("managedRoute") or {}
    if managed.get("router") and managed.get("name"):
        routes.add((str(managed["router"]), str(managed["name"])))
    with contextlib.suppress(InvalidRelease):
        spec = parse_release(release).spec
        router = ctx.routers.get(spec.traffic.router)
        if router is not None and router.route_of(spec):
            routes.add((router.name, router.route_of(spec)))
    for router_name, route_name in sorted(routes):
        router = ctx.routers.get(router_name)
        if router is not None:
            log.info("release deleted: putting %s %s back to 100%% stable", router_name, route_name)
            await router.release(metadata["namespace"], metadata["name"], route_name)
    await ctx.kube.set_finalizers(release, [f for f in finalizers if f != FINALIZER])


def _count(
    namespace: str, name: str, before: ModelReleaseStatus, after: ModelReleaseStatus, decision: Decision
) -> None:
    record_release(namespace, name, after)
    old_stage = (before.candidate_version, before.stage.name if before.stage else None)
    new_stage = (after.candidate_version, after.stage.name if after.stage else None)
    if after.stage is not None and new_stage != old_stage:
        STAGE_TRANSITIONS.labels(stage=after.stage.name).inc()
    for entry in after.history:
        if entry in before.history:
            continue
        if entry.outcome == "Promoted":
            PROMOTIONS.labels(namespace=namespace, release=name, reason=entry.reason).inc()
        elif entry.outcome in ("RolledBack", "Aborted"):
            ROLLBACKS.labels(namespace=namespace, release=name, reason=entry.reason).inc()


async def _report_unusable(kube: Kube, release: Manifest, reason: str, message: str) -> None:
    """A condition and one Warning event per generation; no retries until the release changes."""
    metadata = release["metadata"]
    generation = int(metadata.get("generation") or 1)
    raw_status = release.get("status") or {}
    raw_conditions = raw_status.get("conditions") or []
    conditions: list[Condition] = []
    for raw in raw_conditions:
        with contextlib.suppress(ValidationError):
            conditions.append(Condition.model_validate(raw))
    previous = find_condition(conditions, VALID)
    reported = previous is not None and previous.status == "False" and previous.observed_generation == generation
    if reported and previous is not None and previous.message == message:
        return
    stamp = format_time(datetime.now(UTC))
    conditions = set_condition(conditions, VALID, "False", reason, message, stamp, generation)
    body = {
        "conditions": [c.model_dump(by_alias=True, mode="json") for c in conditions],
        "observedGeneration": generation,
        "message": message,
    }
    log.warning(message)
    await kube.patch_status(metadata["namespace"], metadata["name"], metadata["resourceVersion"], body)
    await kube.event(release, "Warning", reason, message)
