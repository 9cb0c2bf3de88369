"""The ModelRelease status: everything the operator knows about a rollout.

All rollout state lives here (never in the operator's memory), so a restarted
operator, or a new leader, resumes exactly where the last one stopped.
Timestamps are RFC 3339 strings in UTC, as Kubernetes writes them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from modelrelease.api.spec import ApiModel


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    AWAITING_APPROVAL = "AwaitingApproval"
    BAKING = "Baking"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


Verdict = Literal["pass", "fail", "inconclusive"]
ConditionStatus = Literal["True", "False", "Unknown"]


class StageStatus(ApiModel):
    index: int = Field(ge=0)
    name: str
    weight: int = Field(default=0, ge=0, le=100, description="Weight the stage asks for.")
    actual_weight: int = Field(default=0, ge=0, le=100, description="Weight the router reports as achieved.")
    mirror: int = Field(default=0, ge=0, le=100)
    entered_at: str | None = None
    reached_at: str | None = Field(
        default=None,
        description=(
            "When the router first reported the stage's weight and mirror; the stage's duration counts from "
            "here, so a stage whose pods are slow to start still runs its full time at its weight."
        ),
    )
    approved: bool = Field(default=False, description="An approve request for this stage was received.")
    smoke_passed: bool = Field(default=False, description="The stage's smoke test passed; its traffic may start.")
    promotion_confirmed: bool = Field(
        default=False, description="The confirmPromotion webhook answered 2xx for this stage; it may lead to full."
    )
    confirmation_asked_at: str | None = Field(
        default=None, description="When the confirmPromotion webhook was last asked; asked again an interval later."
    )
    smoke_inconclusive: int = Field(
        default=0,
        ge=0,
        description="Smoke runs in a row that got no complete set of answers (I/O errors); the candidate fails at 3.",
    )


class VersionCounts(ApiModel):
    """One version's counts for one proportion, pooled since the stage's weight was reached."""

    numerator: float = Field(
        default=0.0, description="Events counted: correct answers, errors, slow requests, answers of one class..."
    )
    denominator: float = Field(default=0.0, description="Trials they are counted among: answers, requests...")


class PooledPart(ApiModel):
    """One proportion a metric is judged on, for the candidate and the stable version."""

    part: str = Field(
        default="",
        description=(
            "Which proportion: empty for a metric's only one; for latency the bucket boundary slow requests are "
            "counted above (fail and pass boundaries of max; every boundary, for both versions, when compared "
            "with the stable version); for prediction-drift the predicted class."
        ),
    )
    candidate: VersionCounts = Field(default_factory=VersionCounts)
    stable: VersionCounts | None = None


class MetricPool(ApiModel):
    """Counts pooled over the stage: each check's increase, summed here, so a restarted operator resumes them."""

    counted_until: str | None = Field(
        default=None, description="End of the last window counted; the next check counts from here."
    )
    intervals: int = Field(default=0, ge=0, description="Windows counted.")
    gaps: int = Field(default=0, ge=0, description="Checks without data; the next window covers their time.")
    dropped: int = Field(default=0, ge=0, description="Windows dropped because a counter went down (a reset).")
    parts: list[PooledPart] = Field(default_factory=list)


class BoundResult(ApiModel):
    """The verdict on one bound of a metric, with the numbers that explain it."""

    bound: str = Field(description="min, max, maxDrop, maxIncrease, or the effect-size bound of a distribution test.")
    limit: float
    verdict: Verdict
    compared: str = Field(default="value", description="value, drop (stable - candidate) or rise (candidate - stable).")
    estimate: float | None = None
    lower: float | None = Field(default=None, description="Always-valid lower bound of the compared quantity.")
    upper: float | None = Field(default=None, description="Always-valid upper bound of the compared quantity.")
    evidence: float | None = Field(
        default=None, description="Mixture likelihood ratio; a verdict needs it at 1/alpha or more."
    )
    alpha: float | None = Field(default=None, description="This bound's share of 1 - spec.analysis.confidence.")
    reason: str = ""


Judge = Literal["sequential", "threshold"]


class MetricResult(ApiModel):
    name: str
    candidate: float | None = Field(default=None, description="The candidate's value (pooled over the stage).")
    baseline: float | None = Field(default=None, description="The stable version's value (pooled over the stage).")
    verdict: Verdict = "inconclusive"
    samples: int | None = None
    message: str = ""
    judge: Judge = Field(
        default="threshold",
        description=(
            "sequential: an always-valid test on counts pooled over the stage (one fail rolls back); "
            "threshold: the value of one window against the bounds (failureLimit failed checks roll back)."
        ),
    )
    undecided: bool = Field(
        default=False,
        description=(
            "Inconclusive with data: the evidence does not decide yet. Such checks wait; only checks without data "
            "count towards inconclusiveLimit."
        ),
    )
    bounds: list[BoundResult] = Field(default_factory=list)
    pool: MetricPool | None = None


class AnalysisStatus(ApiModel):
    """Counters for the current stage; reset when a stage is entered."""

    checks: int = 0
    passed: int = 0
    failures: int = 0
    inconclusive: int = 0
    consecutive_inconclusive: int = Field(
        default=0, ge=0, description="Checks in a row with a metric without data (undecided metrics do not count)."
    )
    last_check_at: str | None = None
    metrics: list[MetricResult] = Field(default_factory=list)
    last_verdict: Verdict | None = Field(default=None, description="Verdict of the latest check in this stage.")


class Condition(ApiModel):
    """A Kubernetes-style condition (type, status, reason, message, lastTransitionTime)."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class DecidingMetric(ApiModel):
    """A metric's value at a decision: what ``kubectl get mr -o yaml`` shows as the "why"."""

    name: str
    verdict: Verdict
    candidate: float | None = Field(default=None, description="The judged version's value (pooled).")
    baseline: float | None = Field(default=None, description="The version it was compared with (pooled).")
    samples: int | None = None


WebhookHook = Literal["preRollout", "confirmPromotion", "postRollout", "onRollback"]


class WebhookOutcome(ApiModel):
    """What a lifecycle webhook answered, or why it did not."""

    hook: WebhookHook
    url: str
    ok: bool = Field(description="True when an attempt answered 2xx.")
    code: int | None = Field(default=None, description="HTTP status of the last attempt; none when it got no answer.")
    attempts: int = Field(default=1, ge=0)
    message: str = Field(default="", description="The answer's first bytes, or the error of the last attempt.")


class HistoryEntry(ApiModel):
    """One decision or manual act, kept so people can see what happened and why."""

    version: int
    outcome: str = Field(description="Promoted, RolledBack, Aborted, Approved, Retried, Superseded, Failed...")
    reason: str = ""
    message: str = ""
    stage: str | None = None
    at: str | None = None
    metadata: dict[str, str] | None = Field(
        default=None, description="spec.model.metadata of the version, on decisions (lineage)."
    )
    metrics: list[DecidingMetric] | None = Field(
        default=None, description="The metric values that decided a stage, a promotion, a bake or a rollback."
    )
    webhook: WebhookOutcome | None = Field(default=None, description="A lifecycle webhook's answer or failure.")


class PendingWebhook(ApiModel):
    """A lifecycle webhook the operator is delivering; the pass never waits for it."""

    hook: WebhookHook
    version: int = Field(description="The version the call is about.")
    event: str = Field(default="", description="What happened: Promoted, RolledBack, ... (in the body).")
    since: str = Field(description="When it was asked for; with hook and version, the delivery's identity.")


BakeState = Literal["Baking", "Passed", "RolledBack"]


class BakeStatus(ApiModel):
    """The time after a promotion while the previous version stays warm (``spec.rollback``)."""

    state: BakeState = Field(
        default="Baking",
        description=(
            "Baking: the new stable version is judged, the previous one warm; Passed: the previous one stays warm "
            "until scaleDownAt; RolledBack: the new version failed and is drained from the route."
        ),
    )
    version: int = Field(description="The promoted version.")
    previous_version: int = Field(description="The version it replaced, kept warm at full capacity, no traffic.")
    started_at: str
    ends_at: str = Field(description="End of the bake: with no failed check by then, the promotion stands.")
    scale_down_at: str = Field(description="When the previous version is scaled to zero (max of bake and delay).")
    baseline_stage: str | None = Field(
        default=None, description="The stage whose pooled counts of the previous version are the bake's baseline."
    )


class StageEvidence(ApiModel):
    """The latest judged stage's results, kept past its end: the bake's baseline and a promotion's "why"."""

    stage: str
    version: int
    metrics: list[MetricResult] = Field(default_factory=list)


class ManagedRouteStatus(ApiModel):
    """The user's route object a router edits for the release, so it can be put back later."""

    router: str
    name: str


class ModelReleaseStatus(ApiModel):
    phase: Phase = Field(default=Phase.INITIALIZING, strict=False)  # read from JSON as its string value
    stable_version: int | None = None
    candidate_version: int | None = None
    stage: StageStatus | None = None
    analysis: AnalysisStatus = Field(default_factory=AnalysisStatus)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    observed_generation: int | None = None
    serving_hash: str | None = Field(
        default=None, description="Hash of spec.serving the candidate's analysis started with; a change restarts it."
    )
    message: str = ""
    candidate_started_at: str | None = Field(
        default=None,
        description="When the candidate's rollout was (re)started. The load deadline counts from its pods' creation.",
    )
    candidate_ready_at: str | None = Field(
        default=None, description="When the candidate was first ready with its model AVAILABLE; no traffic before."
    )
    rejected_version: int | None = Field(
        default=None, description="Version rolled back; not tried again until spec.model.version changes or a retry."
    )
    retiring_version: int | None = Field(
        default=None, description="The previous stable version, kept at full capacity until the new stable is ready."
    )
    paused_by_request: bool = Field(
        default=False,
        description=(
            "A modelrelease.io/pause request froze this rollout (as spec.paused does) until a modelrelease.io/resume; "
            "cleared when the rollout ends."
        ),
    )
    bake: BakeStatus | None = Field(default=None, description="The bake after the latest promotion, while it lasts.")
    last_judged: StageEvidence | None = Field(
        default=None,
        description="Results of the candidate's latest judged stage (pools included), kept until the bake.",
    )
    pre_rollout_passed: bool = Field(
        default=False, description="The preRollout webhook answered 2xx for the current candidate."
    )
    webhooks: list[PendingWebhook] = Field(
        default_factory=list, description="Lifecycle webhooks being delivered; each answer lands in history."
    )
    managed_route: ManagedRouteStatus | None = Field(
        default=None,
        description="The HTTPRoute or VirtualService the router edits; put back on deletion or a router change.",
    )
