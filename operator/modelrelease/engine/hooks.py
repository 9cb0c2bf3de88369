"""Lifecycle webhooks as the engine sees them: deliveries asked for in status, answers read back later.

Why the engine never waits for one: it only writes a ``PendingWebhook`` into
``status.webhooks``; the handler delivers it in the background
(``modelrelease.webhooks``) and hands the answer back as
``Observations.webhooks`` on a later pass.  No pass blocks on a receiver, so
a receiver that hangs cannot hold an analysis check or a rollback.  Pending
deliveries live in status, so a restarted operator sends them again (at
least once).

Every answer, or failure after the retries, lands in ``status.history`` and
in an event.  The two gates read their answers: ``preRollout`` (a failure
rolls back) and ``confirmPromotion`` (a non-2xx answer waits, as an
approval does, and is asked again an analysis interval later; only a change
between refusal and consent is recorded, so a long wait does not flood history).
"""

from __future__ import annotations

from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import WebhookSpec
from modelrelease.api.status import DecidingMetric, ModelReleaseStatus, PendingWebhook, WebhookHook, WebhookOutcome
from modelrelease.engine.clock import elapsed_since
from modelrelease.engine.context import Pass

GATES: frozenset[WebhookHook] = frozenset({"preRollout", "confirmPromotion"})


def configured(ctx: Pass, hook: WebhookHook) -> WebhookSpec | None:
    hooks = ctx.spec.webhooks
    return {
        "preRollout": hooks.pre_rollout,
        "confirmPromotion": hooks.confirm_promotion,
        "postRollout": hooks.post_rollout,
        "onRollback": hooks.on_rollback,
    }[hook]


def is_pending(ctx: Pass, hook: WebhookHook, version: int) -> bool:
    return any(p.hook == hook and p.version == version for p in ctx.status.webhooks)


def ask(ctx: Pass, hook: WebhookHook, version: int, event: str) -> bool:
    """Queue a delivery of ``hook`` about ``version``; False when the release configures no such hook."""
    if configured(ctx, hook) is None:
        return False
    if not is_pending(ctx, hook, version):
        pending = PendingWebhook(hook=hook, version=version, event=event, since=ctx.stamp)
        ctx.status.webhooks = [*ctx.status.webhooks, pending]
    return True


def drop_gates(ctx: Pass) -> None:
    """The candidate is gone (promoted, rolled back, retired, restarted): its gates' answers mean nothing now."""
    ctx.status.webhooks = [p for p in ctx.status.webhooks if p.hook not in GATES]


def handle_answers(ctx: Pass) -> None:
    """Record each finished delivery that is still pending, and let the gates act on theirs."""
    for result in ctx.observations.webhooks:
        outcome = result.outcome
        match = next(
            (
                p
                for p in ctx.status.webhooks
                if p.hook == outcome.hook and p.version == result.version and p.since == result.since
            ),
            None,
        )
        if match is None:
            continue  # a delivery dropped meanwhile (its candidate ended) or answered before
        ctx.status.webhooks = [p for p in ctx.status.webhooks if p is not match]
        _record(ctx, match, outcome)
        if outcome.hook == "preRollout":
            _pre_rollout_answered(ctx, match.version, outcome)
        elif outcome.hook == "confirmPromotion":
            _confirmation_answered(ctx, match.version, outcome)


def _words(outcome: WebhookOutcome) -> str:
    code = f"HTTP {outcome.code}" if outcome.code is not None else "no answer"
    detail = f": {outcome.message}" if outcome.message else ""
    tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
    return f"{code}{tries}{detail}"


def _record(ctx: Pass, pending: PendingWebhook, outcome: WebhookOutcome) -> None:
    if outcome.hook == "confirmPromotion" and not outcome.ok and _refused_before(ctx, pending.version):
        return  # still refusing: the first refusal is in history and in an event
    reason = f"{outcome.hook[0].upper()}{outcome.hook[1:]}{'Answered' if outcome.ok else 'Failed'}"
    message = f"{outcome.hook} webhook about v{pending.version} ({pending.event or 'event'}): {_words(outcome)}"
    stage = ctx.status.stage.name if ctx.status.stage and pending.version == ctx.status.candidate_version else None
    ctx.record(pending.version, "Webhook", reason, message, stage, webhook=outcome)
    ctx.emit("Normal" if outcome.ok else "Warning", reason, message)


def _refused_before(ctx: Pass, version: int) -> bool:
    for entry in reversed(ctx.status.history):
        if entry.version == version and entry.webhook is not None and entry.webhook.hook == "confirmPromotion":
            return not entry.webhook.ok
    return False


def _pre_rollout_answered(ctx: Pass, version: int, outcome: WebhookOutcome) -> None:
    from modelrelease.engine.lifecycle import fail  # lifecycle imports this module

    status = ctx.status
    if status.candidate_version != version or status.pre_rollout_passed:
        return
    if outcome.ok:
        status.pre_rollout_passed = True
        return
    fail(ctx, "PreRolloutFailed", f"the preRollout webhook failed: {_words(outcome)}")


def _confirmation_answered(ctx: Pass, version: int, outcome: WebhookOutcome) -> None:
    stage = ctx.status.stage
    if ctx.status.candidate_version == version and stage is not None and outcome.ok:
        stage.promotion_confirmed = True


def pre_rollout_cleared(ctx: Pass, version: int) -> bool:
    """True once the preRollout webhook (if any) answered 2xx for this candidate; asks for it until then."""
    status = ctx.status
    if status.pre_rollout_passed or configured(ctx, "preRollout") is None:
        return True
    if ctx.paused and not is_pending(ctx, "preRollout", version):
        ctx.waiting_for = "paused before the preRollout webhook"
        return False
    ask(ctx, "preRollout", version, "PreRollout")
    ctx.waiting_for = "waiting for the preRollout webhook"
    return False


def leads_to_full(ctx: Pass, index: int) -> bool:
    """Completing stage ``index`` takes the candidate to weight 100 or promotes it (and it is not at 100 already)."""
    stages = ctx.spec.stages
    if (stages[index].weight or 0) >= 100:
        return False
    return index + 1 >= len(stages) or (stages[index + 1].weight or 0) >= 100


def awaiting_confirmation(ctx: Pass, version: int) -> bool:
    """The confirmPromotion gate: True while it holds the stage; asks again an analysis interval after a refusal."""
    stage = ctx.status.stage
    if configured(ctx, "confirmPromotion") is None or stage is None or stage.promotion_confirmed:
        return False
    if not leads_to_full(ctx, stage.index):
        return False
    if not is_pending(ctx, "confirmPromotion", version):
        since = elapsed_since(stage.confirmation_asked_at, ctx.now)
        if since is None or since >= parse_duration(ctx.spec.analysis.interval):
            ask(ctx, "confirmPromotion", version, "ConfirmPromotion")
            stage.confirmation_asked_at = ctx.stamp
    return True


def webhook_body(
    release: str,
    namespace: str,
    pending: PendingWebhook,
    phase: str,
    stable: int | None,
    candidate: int | None,
    stage: str | None,
    metadata: dict[str, str],
    metrics: list[DecidingMetric],
) -> dict[str, object]:
    """The JSON every hook receives: which release, which versions, where it stands, lineage and metrics."""
    return {
        "hook": pending.hook,
        "event": pending.event,
        "release": {"namespace": namespace, "name": release},
        "version": pending.version,
        "stableVersion": stable,
        "candidateVersion": candidate,
        "phase": phase,
        "stage": stage,
        "askedAt": pending.since,
        "metadata": metadata,
        "metrics": [m.model_dump(mode="json") for m in metrics],
    }


def latest_metrics(status: ModelReleaseStatus, version: int) -> list[DecidingMetric]:
    """The values behind the latest decision about ``version`` (or its stage's latest check, if none yet)."""
    for entry in reversed(status.history):
        if entry.version == version and entry.metrics:
            return list(entry.metrics)
    return [
        DecidingMetric(name=m.name, verdict=m.verdict, candidate=m.candidate, baseline=m.baseline, samples=m.samples)
        for m in status.analysis.metrics
    ]
