"""What the handler saw of the world this pass, handed to the engine as plain data.

Every observation that concerns the candidate names the version it was taken
for, so a result that arrives late for a candidate that has since been
replaced is ignored instead of judging the wrong pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelrelease.api.annotations import RequestKind
from modelrelease.api.status import MetricResult, WebhookOutcome

ModelState = Literal["AVAILABLE", "LOADING", "FAILED", "UNKNOWN"]


@dataclass(frozen=True)
class DeploymentState:
    """One Deployment the release owns; absence from ``Observations.deployments`` means it does not exist.

    ``ready`` must count only ready pods of the Deployment's current template
    (0 until ``status.observedGeneration`` reaches ``metadata.generation``,
    then ``min(readyReplicas, updatedReplicas)``): after a serving change the
    old pods are still ready, and the candidate must not be judged on them.
    """

    version: int
    desired: int
    ready: int
    created_at: datetime | None = None
    """The Deployment object's creationTimestamp: a later one than the candidate's readiness means it was recreated."""


@dataclass(frozen=True)
class ModelLoad:
    """TF Serving's view of the candidate's model (ModelService.GetModelStatus).

    ``loading_since`` is when the candidate's current pods were created (the
    oldest of them), or, while none could be created, since when their
    ReplicaSet has failed to create them; None while no pod has been asked
    for yet.  The load deadline counts from it, never from a moment the
    operator stamped itself: an operator that was down (or had not yet
    created the Deployment) must not count its own downtime as load time.
    """

    version: int
    state: ModelState
    message: str = ""
    loading_since: datetime | None = None


@dataclass(frozen=True)
class SmokeResult:
    """Predictions on the golden set.

    ``error``: the smoke test cannot run as configured (the golden set is
    missing or unusable), which fails the candidate.  ``inconclusive``: the
    run got no complete set of answers for a transient reason (no ready pod,
    gRPC UNAVAILABLE or a deadline): not a verdict on the model, so the
    engine tries again, and fails the candidate only after
    ``EngineSettings.smoke_attempts`` such runs in a row.
    """

    version: int
    accuracy: float
    count: int
    error: str | None = None
    inconclusive: str | None = None


@dataclass(frozen=True)
class AnalysisResult:
    """One analysis check: every metric judged for candidate against baseline."""

    version: int
    metrics: tuple[MetricResult, ...]


@dataclass(frozen=True)
class RouteObservation:
    """What the router reports the data plane does now.

    ``reached`` is the router's own verdict that the data plane does what was
    last asked: routers that cannot hit a weight exactly (the replicas router
    rounds to whole pods) say so here.  When None, the engine compares the
    achieved weight and mirror with what the stage asks for.
    """

    weight: int
    mirror: int = 0
    reached: bool | None = None


@dataclass(frozen=True)
class Request:
    """A manual act read from an annotation (``modelrelease.io/<kind>``); ``stage`` is approve's value."""

    kind: RequestKind
    stage: str | None = None


@dataclass(frozen=True)
class WebhookResult:
    """A finished delivery of a pending webhook (``status.webhooks``), named by its hook, version and ``since``."""

    version: int
    since: str
    outcome: WebhookOutcome


@dataclass(frozen=True)
class Observations:
    deployments: tuple[DeploymentState, ...] = ()
    model: ModelLoad | None = None
    smoke: SmokeResult | None = None
    analysis: AnalysisResult | None = None
    route: RouteObservation | None = None
    requests: tuple[Request, ...] = field(default_factory=tuple)
    webhooks: tuple[WebhookResult, ...] = field(default_factory=tuple)

    def deployment(self, version: int | None) -> DeploymentState | None:
        if version is None:
            return None
        return next((d for d in self.deployments if d.version == version), None)

    def model_of(self, version: int | None) -> ModelLoad | None:
        return self.model if self.model is not None and self.model.version == version else None

    def smoke_of(self, version: int | None) -> SmokeResult | None:
        return self.smoke if self.smoke is not None and self.smoke.version == version else None

    def analysis_of(self, version: int | None) -> AnalysisResult | None:
        return self.analysis if self.analysis is not None and self.analysis.version == version else None
