"""A small simulated world for the engine tests: it plays the handler and the cluster.

Each ``step`` reads observations from the world, calls ``decide`` (twice
when the engine asks for a smoke test or an analysis check, as the real
handler does), and applies the actions to the world.  Nothing here sleeps or
reads a clock: time is a number the test moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelrelease.api import MetricResult, ModelReleaseSpec, ModelReleaseStatus
from modelrelease.api.status import Verdict
from modelrelease.engine import (
    Action,
    AnalysisResult,
    Decision,
    DeleteDeployment,
    DeploymentState,
    EmitEvent,
    EnsureDeployment,
    FixedReplicas,
    ModelLoad,
    Observations,
    Request,
    RouteObservation,
    RunAnalysis,
    RunSmoke,
    ScaleToZero,
    SetRoute,
    SmokeResult,
    decide,
)
from modelrelease.engine.observations import ModelState, WebhookResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)
METRIC_NAMES = ("error-rate", "latency-p99")


def make_spec(version: int = 1, **spec: Any) -> ModelReleaseSpec:
    """A spec from wire-format (camelCase) overrides on top of the smallest useful manifest."""
    body: dict[str, Any] = {
        "model": {"name": "digits", "basePath": "/models/digits", "version": version},
        "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 3},
    }
    body.update(spec)
    return ModelReleaseSpec.model_validate(body)


def with_version(spec: ModelReleaseSpec, version: int) -> ModelReleaseSpec:
    return spec.model_copy(update={"model": spec.model.model_copy(update={"version": version})})


def results(verdict: Verdict, candidate: float = 0.001, baseline: float = 0.001) -> tuple[MetricResult, ...]:
    return tuple(
        MetricResult(name=name, verdict=verdict, candidate=candidate, baseline=baseline, samples=100)
        for name in METRIC_NAMES
    )


@dataclass(frozen=True)
class Call:
    """One ``decide`` call with everything that went in and what came out."""

    spec: ModelReleaseSpec
    before: ModelReleaseStatus
    observations: Observations
    now: datetime
    generation: int
    decision: Decision


@dataclass
class World:
    spec: ModelReleaseSpec
    status: ModelReleaseStatus = field(default_factory=ModelReleaseStatus)
    now: datetime = T0
    generation: int = 1
    deployments: dict[int, DeploymentState] = field(default_factory=dict)
    model_state: dict[int, ModelState] = field(default_factory=dict)
    """TF Serving state per version; AVAILABLE when absent."""
    pods_ready: bool = True
    route_applied: SetRoute | None = None
    route_reached: bool | None = None
    """Forwarded as RouteObservation.reached; None lets the engine compare weights."""
    route_follows: bool = True
    """False: the router keeps reporting what it did before (a slow data plane)."""
    observed_route: tuple[int, int] = (0, 0)
    smoke_accuracy: float = 0.99
    smoke_error: str | None = None
    verdict: Verdict = "pass"
    result_fields: dict[str, Any] = field(default_factory=dict)
    """Set on every metric result the analysis hands in (judge, undecided, message...)."""
    requested: list[RunAnalysis] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    watchers: list[Callable[[Call], None]] = field(default_factory=list)
    """Called with every single ``decide`` call, for the property tests' invariants."""
    analysis_runs: int = 0
    smoke_runs: int = 0
    created_at: dict[int, datetime] = field(default_factory=dict)
    """When each Deployment was created (by the first EnsureDeployment that found it absent)."""
    pods_since: dict[int, datetime] = field(default_factory=dict)
    """When each version's current pods were created: on creation, and again when scaled up from zero."""
    smoke_inconclusive: str | None = None
    answers: list[WebhookResult] = field(default_factory=list)
    """Webhook deliveries finished since the last pass: handed to the next ``step``, then forgotten."""

    def observations(self, requests: tuple[Request, ...] = ()) -> Observations:
        candidate = self.status.candidate_version
        model = None
        if candidate is not None:
            model = ModelLoad(
                version=candidate,
                state=self.model_state.get(candidate, "AVAILABLE"),
                loading_since=self.pods_since.get(candidate),
            )
        weight, mirror = self.observed_route
        return Observations(
            deployments=tuple(self.deployments[v] for v in sorted(self.deployments)),
            model=model,
            route=RouteObservation(weight=weight, mirror=mirror, reached=self.route_reached),
            requests=requests,
            webhooks=tuple(self.answers),
        )

    def step(self, seconds: float = 30, requests: tuple[Request, ...] = ()) -> Decision:
        """Let time pass, then run one handler pass."""
        self.now += timedelta(seconds=seconds)
        observed = self.observations(requests)
        self.answers = []
        decision = self._decide(self.status, observed)
        follow_up = decision.follow_up()
        if isinstance(follow_up, RunSmoke):
            self.smoke_runs += 1
            smoke = SmokeResult(
                follow_up.version, self.smoke_accuracy, 100, self.smoke_error, inconclusive=self.smoke_inconclusive
            )
            again = replace(observed, smoke=smoke, requests=(), webhooks=())
            decision = decision.followed_by(self._decide(decision.status, again))
        elif isinstance(follow_up, RunAnalysis):
            self.analysis_runs += 1
            self.requested.append(follow_up)
            metrics = tuple(r.model_copy(update=self.result_fields) for r in results(self.verdict))
            analysis = AnalysisResult(follow_up.candidate_version, metrics)
            again = replace(observed, analysis=analysis, requests=(), webhooks=())
            decision = decision.followed_by(self._decide(decision.status, again))
        self.apply(decision.actions)
        self.status = decision.status
        self.decisions.append(decision)
        return decision

    def _decide(self, status: ModelReleaseStatus, observed: Observations) -> Decision:
        decision = decide(self.spec, status, observed, self.now, self.generation)
        for watch in self.watchers:
            watch(Call(self.spec, status, observed, self.now, self.generation, decision))
        return decision

    def apply(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if isinstance(action, EnsureDeployment):
                desired = _replicas(action)
                self._deploy(action.version, desired)
            elif isinstance(action, ScaleToZero):
                self._deploy(action.version, 0)
            elif isinstance(action, DeleteDeployment):
                self.delete_deployment(action.version)
            elif isinstance(action, SetRoute):
                self.route_applied = action
                if self.route_follows:
                    self.observed_route = (action.weight, action.mirror)

    def _deploy(self, version: int, desired: int) -> None:
        created = self.created_at.setdefault(version, self.now)
        previous = self.deployments.get(version)
        if desired == 0:
            self.pods_since.pop(version, None)
        elif previous is None or previous.desired == 0:
            self.pods_since[version] = self.now
        self.deployments[version] = DeploymentState(version, desired, self._ready(desired), created)

    def delete_deployment(self, version: int) -> None:
        """Someone (or the engine) deleted it: its pods and creation time go with it."""
        self.deployments.pop(version, None)
        self.created_at.pop(version, None)
        self.pods_since.pop(version, None)

    def _ready(self, desired: int) -> int:
        return desired if self.pods_ready else 0

    def run_until(self, predicate: Any, max_steps: int = 200, seconds: float = 30) -> Decision:
        for _ in range(max_steps):
            decision = self.step(seconds)
            if predicate(decision):
                return decision
        raise AssertionError(f"condition not reached in {max_steps} steps; status: {self.status.message}")

    def set_version(self, version: int) -> None:
        self.spec = with_version(self.spec, version)
        self.generation += 1

    def edit(self, **update: Any) -> None:
        self.spec = self.spec.model_copy(update=update)
        self.generation += 1


def _replicas(action: EnsureDeployment) -> int:
    if isinstance(action.replicas, FixedReplicas):
        return action.replicas.count
    return max(1, math.ceil(action.replicas.full * action.replicas.percent / 100))


def stable_world(spec: ModelReleaseSpec | None = None) -> World:
    """A world where v1 is already stable at full capacity."""
    world = World(spec or make_spec(1))
    world.step(0)
    world.step(0)
    assert world.status.phase == "Succeeded", world.status.message
    return world


def rolling_out_at(stages: list[dict[str, Any]], stage: str, **spec: Any) -> World:
    """A world whose stable v1 is rolling v2 out and has just entered ``stage``."""
    body: dict[str, Any] = {"stages": stages, "analysis": {"interval": "30s"}}
    body.update(spec)
    world = stable_world(make_spec(1, **body))
    world.set_version(2)
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == stage)
    return world


def events(decision: Decision, reason: str | None = None) -> list[EmitEvent]:
    return [a for a in decision.actions if isinstance(a, EmitEvent) and (reason is None or a.reason == reason)]


def route(decision: Decision) -> SetRoute:
    return next(a for a in decision.actions if isinstance(a, SetRoute))


def ensured(decision: Decision, version: int) -> EnsureDeployment | None:
    return next((a for a in decision.actions if isinstance(a, EnsureDeployment) and a.version == version), None)
