"""The working state of one engine pass.

``decide`` copies the status once and the rules below mutate that copy and
append actions; nothing outside the pass ever sees it half-done, so the
function as a whole stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from modelrelease.api.spec import ModelReleaseSpec, Stage
from modelrelease.api.status import DecidingMetric, HistoryEntry, ModelReleaseStatus, Verdict, WebhookOutcome
from modelrelease.engine.actions import Action, EmitEvent, EventType
from modelrelease.engine.clock import format_time
from modelrelease.engine.history import append_history
from modelrelease.engine.observations import Observations


@dataclass(frozen=True)
class EngineSettings:
    """Operator-wide knobs that are not (yet) part of the API."""

    load_timeout: timedelta = timedelta(minutes=10)
    """A candidate whose model is not AVAILABLE this long after its pods were created has failed to load."""
    smoke_attempts: int = 3
    """Smoke runs in a row without a complete set of answers (I/O errors) before the candidate fails."""


class Wait(StrEnum):
    """Why an active candidate is not moving on; decides the phase and the Progressing condition."""

    NONE = ""
    PAUSED = "PausedBySpec"
    PAUSED_BY_REQUEST = "PausedByRequest"
    NO_DATA = "AnalysisInconclusive"
    HELD = "HeldAtStage"
    APPROVAL = "AwaitingApproval"
    CONFIRMATION = "AwaitingConfirmation"


@dataclass
class Pass:
    spec: ModelReleaseSpec
    status: ModelReleaseStatus
    observations: Observations
    now: datetime
    generation: int
    settings: EngineSettings
    actions: list[Action] = field(default_factory=list)
    started: bool = False
    """A rollout (re)started this pass: its pods do not exist yet, so nothing more is judged."""
    wait: Wait = Wait.NONE
    checked: Verdict | None = None
    """Verdict of a check recorded this pass, kept even when the stage it completed reset the counters."""
    waiting_for: str = ""
    """Human words for what the current stage still needs; becomes status.message."""

    @property
    def paused(self) -> bool:
        """Frozen by the declarative ``spec.paused`` or by a pause request (``status.pausedByRequest``)."""
        return self.spec.paused or self.status.paused_by_request

    @property
    def pause_wait(self) -> Wait:
        return Wait.PAUSED if self.spec.paused else Wait.PAUSED_BY_REQUEST

    @property
    def stamp(self) -> str:
        return format_time(self.now)

    def emit(self, type_: EventType, reason: str, message: str) -> None:
        self.actions.append(EmitEvent(type=type_, reason=reason, message=message))

    def record(
        self,
        version: int,
        outcome: str,
        reason: str,
        message: str,
        stage: str | None = None,
        *,
        metrics: list[DecidingMetric] | None = None,
        webhook: WebhookOutcome | None = None,
        lineage: bool = False,
    ) -> None:
        """Append to history; ``lineage`` attaches spec.model.metadata when it describes ``version``."""
        metadata = self.spec.model.metadata
        carries = lineage and metadata and version == self.spec.model.version
        entry = HistoryEntry(
            version=version,
            outcome=outcome,
            reason=reason,
            message=message,
            stage=stage,
            at=self.stamp,
            metadata=dict(metadata) if carries else None,
            metrics=metrics or None,
            webhook=webhook,
        )
        self.status.history = append_history(self.status.history, entry)

    def current_stage(self) -> Stage | None:
        """The spec of the stage the candidate is in, or None when there is none."""
        stage = self.status.stage
        if stage is None or stage.index >= len(self.spec.stages):
            return None
        found = self.spec.stages[stage.index]
        return found if found.name == stage.name else None
