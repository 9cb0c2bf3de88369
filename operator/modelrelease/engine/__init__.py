"""The pure rollout engine: (spec, status, observations, now) -> (status, actions).

No I/O, no clock, no randomness: every rule (docs/architecture.md, "The engine")
is a unit or property test, and a restarted operator resumes from status alone.
"""

from modelrelease.engine.actions import (
    Action,
    ConsumeRequest,
    DeleteDeployment,
    EmitEvent,
    EnsureDeployment,
    FixedReplicas,
    Replicas,
    RunAnalysis,
    RunSmoke,
    ScaleToZero,
    SetRoute,
    WeightedReplicas,
)
from modelrelease.engine.context import EngineSettings
from modelrelease.engine.machine import Decision, decide
from modelrelease.engine.observations import (
    AnalysisResult,
    DeploymentState,
    ModelLoad,
    Observations,
    Request,
    RouteObservation,
    SmokeResult,
)
from modelrelease.engine.phases import ALLOWED_TRANSITIONS, IllegalTransition

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Action",
    "AnalysisResult",
    "ConsumeRequest",
    "Decision",
    "DeleteDeployment",
    "DeploymentState",
    "EmitEvent",
    "EngineSettings",
    "EnsureDeployment",
    "FixedReplicas",
    "IllegalTransition",
    "ModelLoad",
    "Observations",
    "Replicas",
    "Request",
    "RouteObservation",
    "RunAnalysis",
    "RunSmoke",
    "ScaleToZero",
    "SetRoute",
    "SmokeResult",
    "WeightedReplicas",
    "decide",
]
