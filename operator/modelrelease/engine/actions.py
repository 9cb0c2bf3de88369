"""What the engine asks the handler to do: data only, applied by the kopf handler.

Deployments and the route are *desired state*, emitted on every pass so a
handler that crashed half-way simply applies them again (they are
idempotent).  Smoke and analysis runs, events and request consumption happen
only on the pass that decides them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from modelrelease.api.status import MetricResult
from modelrelease.engine.observations import Request

Role = Literal["stable", "canary"]
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class FixedReplicas:
    count: int


@dataclass(frozen=True)
class WeightedReplicas:
    """Size the candidate for ``percent`` of the traffic the stable's ``full`` replicas carry.

    The router decides the number: the replicas router derives the traffic
    split from the replica ratio, a mesh router only needs enough capacity.
    """

    percent: int
    full: int


Replicas = FixedReplicas | WeightedReplicas


@dataclass(frozen=True)
class EnsureDeployment:
    version: int
    role: Role
    replicas: Replicas


@dataclass(frozen=True)
class ScaleToZero:
    """Keep the Deployment (for a fast re-rollout) but run no pods."""

    version: int


@dataclass(frozen=True)
class DeleteDeployment:
    """An old version beyond spec.revisionHistoryLimit."""

    version: int


@dataclass(frozen=True)
class SetRoute:
    """Where users go: ``weight``/``mirror``/``match`` to the candidate, the rest to the stable version.

    ``retiring_version`` is the previous stable during a handover: it keeps
    serving users beside the new stable until that one runs at full capacity.
    Outside a handover only the stable version (and a candidate its stage
    lets in) may serve anyone.
    """

    stable_version: int
    candidate_version: int | None
    weight: int = 0
    mirror: int = 0
    match: tuple[dict[str, str], ...] = field(default_factory=tuple)
    retiring_version: int | None = None


@dataclass(frozen=True)
class RunSmoke:
    """Predict on the golden set now and call the engine again with the SmokeResult."""

    version: int
    golden_set: str
    min_accuracy: float


@dataclass(frozen=True)
class RunAnalysis:
    """Query the metrics now and call the engine again with the AnalysisResult.

    ``since`` is when the stage's pools start (``status.stage.reachedAt``),
    ``at`` the end of this check's windows (the pass's time), ``previous``
    the stage's results so far, whose pools the check carries on.
    ``frozen_baseline``: a bake check; the baseline version serves nobody,
    so it is not measured and its pools in ``previous`` stay as they are.
    """

    candidate_version: int
    baseline_version: int
    stage: str
    interval: str
    since: str | None = None
    at: str | None = None
    previous: tuple[MetricResult, ...] = ()
    frozen_baseline: bool = False


@dataclass(frozen=True)
class EmitEvent:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class ConsumeRequest:
    """Remove the request's annotation: it has been acted on (or refused, with an event saying why)."""

    request: Request


Action = (
    EnsureDeployment | ScaleToZero | DeleteDeployment | SetRoute | RunSmoke | RunAnalysis | EmitEvent | ConsumeRequest
)
