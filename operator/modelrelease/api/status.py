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
    smoke_inconclusive: int = Field(
        default=0,
        ge=0,
        description="Smoke runs in a row that got no complete set of answers (I/O errors); the candidate fails at 3.",
    )


class MetricResult(ApiModel):
    name: str
    candidate: float | None = None
    baseline: float | None = None
    verdict: Verdict = "inconclusive"
    samples: int | None = None
    message: str = ""


class AnalysisStatus(ApiModel):
    """Counters for the current stage; reset when a stage is entered."""

    checks: int = 0
    passed: int = 0
    failures: int = 0
    inconclusive: int = 0
    consecutive_inconclusive: int = 0
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


class HistoryEntry(ApiModel):
    """One decision or manual act, kept so people can see what happened and why."""

    version: int
    outcome: str = Field(description="Promoted, RolledBack, Aborted, Approved, Retried, Superseded, Failed...")
    reason: str = ""
    message: str = ""
    stage: str | None = None
    at: str | None = None


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
    managed_route: ManagedRouteStatus | None = Field(
        default=None,
        description="The HTTPRoute or VirtualService the router edits; put back on deletion or a router change.",
    )
