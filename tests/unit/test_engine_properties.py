"""Property tests: random sequences of observations, requests, time steps and spec edits.

Every single ``decide`` call in every sequence is checked against the
invariants that make the engine safe to leave alone at night.  Hypothesis
runs derandomized with a fixed example budget, so CI sees the same sequences
every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_engine_support import Call, World, make_spec, with_version

from modelrelease.api import ModelReleaseSpec, Phase
from modelrelease.api.status import Verdict
from modelrelease.engine import (
    DeleteDeployment,
    EnsureDeployment,
    FixedReplicas,
    Request,
    ScaleToZero,
    SetRoute,
    decide,
)
from modelrelease.engine.observations import ModelState
from modelrelease.engine.phases import is_allowed
from modelrelease.engine.stages import has_traffic
from modelrelease.engine.verdicts import check_verdict, complete_results

STAGES = [
    {"name": "smoke", "smoke": {"minAccuracy": 0.9}},
    {"name": "shadow", "mirror": 100, "duration": "1m", "minChecks": 1},
    {"name": "canary", "weight": 10, "duration": "2m"},
    {"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}], "approval": True},
    {"name": "full", "weight": 100, "minChecks": 1},
]
STAGE_NAMES = [s["name"] for s in STAGES]
BASE_SPEC = make_spec(
    1,
    stages=STAGES,
    traffic={"router": "istio", "istio": {"virtualService": "digits"}},
    analysis={"interval": "30s", "failureLimit": 2, "inconclusiveLimit": 3, "minChecks": 2},
    revisionHistoryLimit=1,
)

Edit = Literal["none", "version", "image", "replicas", "pause", "hold", "automatic"]


@dataclass(frozen=True)
class Step:
    seconds: int
    verdict: Verdict
    model: ModelState
    pods_ready: bool
    route_follows: bool
    smoke_ok: bool
    requests: tuple[Request, ...]
    edit: Edit
    edit_value: int


requests_strategy = st.lists(
    st.one_of(
        st.builds(Request, st.just("approve"), st.sampled_from([*STAGE_NAMES, "nope"])),
        st.builds(Request, st.sampled_from(["promote", "abort", "retry", "pause", "resume"])),
    ),
    max_size=2,
).map(tuple)

steps_strategy = st.builds(
    Step,
    seconds=st.sampled_from([0, 10, 30, 30, 30, 60, 120, 700]),
    verdict=st.sampled_from(["pass", "pass", "pass", "fail", "inconclusive"]),
    model=st.sampled_from(["AVAILABLE", "AVAILABLE", "AVAILABLE", "AVAILABLE", "LOADING", "FAILED"]),
    pods_ready=st.sampled_from([True, True, True, True, False]),
    route_follows=st.sampled_from([True, True, True, False]),
    smoke_ok=st.sampled_from([True, True, True, False]),
    requests=st.one_of(st.just(()), st.just(()), st.just(()), requests_strategy),
    edit=st.sampled_from(["none"] * 8 + ["version", "version", "image", "replicas", "pause", "hold", "automatic"]),
    edit_value=st.integers(min_value=0, max_value=5),
)


def edited(spec: ModelReleaseSpec, step: Step) -> ModelReleaseSpec:
    value = step.edit_value
    if step.edit == "version":
        return with_version(spec, 1 + value % 4)
    if step.edit == "image":
        return spec.model_copy(
            update={"serving": spec.serving.model_copy(update={"image": f"tensorflow/serving:2.{value}"})}
        )
    if step.edit == "replicas":
        return spec.model_copy(update={"serving": spec.serving.model_copy(update={"replicas": 1 + value % 3})})
    if step.edit == "pause":
        return spec.model_copy(update={"paused": not spec.paused})
    if step.edit == "hold":
        return spec.model_copy(update={"hold_at": ([*STAGE_NAMES, ""])[value]})
    if step.edit == "automatic":
        return spec.model_copy(
            update={"rollback": spec.rollback.model_copy(update={"automatic": not spec.rollback.automatic})}
        )
    return spec


@dataclass
class Invariants:
    """Checks one ``decide`` call; remembers per candidate which stages it completed."""

    completed: list[str] = field(default_factory=list)
    calls: int = 0
    outcomes: set[str] = field(default_factory=set)

    @property
    def furthest(self) -> str:
        """The most interesting thing that happened, to show the sequences do reach the rules."""
        for outcome in ("Promoted", "RolledBack", "Failed", "StageCompleted", "Started"):
            if outcome in self.outcomes:
                return outcome
        return "nothing"

    def __call__(self, call: Call) -> None:
        self.calls += 1
        spec, before, decision = call.spec, call.before, call.decision
        after, actions = decision.status, decision.actions
        assert is_allowed(before.phase, after.phase), f"{before.phase} -> {after.phase}"
        self._deterministic(call)
        self._stable_keeps_full_capacity(call)
        self._at_most_one_candidate(call)
        if after.phase == Phase.ROLLED_BACK:
            assert after.candidate_version is None
            assert _route(actions).weight == 0 and _route(actions).mirror == 0
        if _route(actions).weight > 0 or _route(actions).mirror > 0:
            assert after.candidate_ready_at is not None, "traffic before the candidate was ready"
        if before.phase == Phase.ROLLED_BACK and after.candidate_version is not None:
            retried = any(r.kind == "retry" for r in call.observations.requests)
            assert retried or spec.model.version != before.rejected_version
        if after.candidate_version is not None and after.phase in (Phase.PROGRESSING, Phase.AWAITING_APPROVAL):
            paused = spec.paused or after.paused_by_request
            assert not paused or after.history[-1].outcome == "Started"
            assert after.analysis.consecutive_inconclusive < spec.analysis.inconclusive_limit
        assert after.candidate_version is not None or not after.paused_by_request, "a pause outlived its rollout"
        self._stage_completions(call)
        self._measures_the_stage_it_stays_in(call)

    def _deterministic(self, call: Call) -> None:
        again = decide(call.spec, call.before, call.observations, call.now, call.generation)
        assert again == call.decision

    def _stable_keeps_full_capacity(self, call: Call) -> None:
        full = call.spec.serving.replicas
        after, actions = call.decision.status, call.decision.actions
        assert after.stable_version is not None
        kept = {after.stable_version, after.retiring_version, call.before.stable_version} - {None}
        for action in actions:
            if isinstance(action, ScaleToZero | DeleteDeployment):
                assert action.version not in (after.stable_version, after.retiring_version)
        assert EnsureDeployment(after.stable_version, "stable", FixedReplicas(full)) in actions
        old = call.before.stable_version
        if old is not None and old != after.stable_version and call.before.phase != Phase.INITIALIZING:
            new_stable = call.observations.deployment(after.stable_version)
            handed_over = new_stable is not None and new_stable.ready >= full
            assert handed_over or EnsureDeployment(old, "stable", FixedReplicas(full)) in actions
        assert kept

    def _at_most_one_candidate(self, call: Call) -> None:
        after, actions = call.decision.status, call.decision.actions
        canaries = [a.version for a in actions if isinstance(a, EnsureDeployment) and a.role == "canary"]
        assert canaries == ([] if after.candidate_version is None else [after.candidate_version])
        if after.candidate_version is not None:
            assert after.candidate_version not in (after.stable_version, after.retiring_version)

    def _measures_the_stage_it_stays_in(self, call: Call) -> None:
        """A call that asks for a measurement has not left its stage: the second call is judged in it.

        The handler's observations (the route's ``reached`` above all) were made
        for the stage the pass began in, and the second call sees them again.
        """
        if call.decision.follow_up() is None:
            return
        before, after = call.before.stage, call.decision.status.stage
        assert before is not None and after is not None
        assert (after.index, after.name) == (before.index, before.name), "left the stage it asked to measure"

    def _stage_completions(self, call: Call) -> None:
        spec, before, after = call.spec, call.before, call.decision.status
        new_entries = after.history[len(before.history) :] if len(after.history) > len(before.history) else []
        if len(before.history) >= 50:  # capped: compare by identity of the tail
            new_entries = [h for h in after.history if h.at == call.now.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for entry in new_entries:
            if entry.outcome != "Promoted" or entry.reason != "InitialVersion":
                self.outcomes.add(entry.outcome)
            if entry.outcome == "Started":
                self.completed = []
            if entry.outcome == "StageCompleted":
                assert not spec.paused, "a stage completed while spec.paused"
                self._check_completion(call, entry.stage)
            if entry.outcome == "Promoted" and entry.reason == "AllStagesPassed":
                assert self.completed == STAGE_NAMES, f"promoted after {self.completed}"
        del after

    def _check_completion(self, call: Call, name: str | None) -> None:
        spec, before = call.spec, call.before
        assert before.stage is not None and before.stage.name == name
        stage = spec.stages[before.stage.index]
        assert self.completed == STAGE_NAMES[: before.stage.index], "a stage was skipped"
        self.completed.append(stage.name)
        if spec.hold_at in STAGE_NAMES:
            assert before.stage.index < STAGE_NAMES.index(spec.hold_at), "completed a held stage"
        if stage.approval:
            approved = any(r.kind == "approve" and r.stage == name for r in call.observations.requests)
            assert before.stage.approved or approved, "completed without approval"
        if not has_traffic(stage):
            return
        analysis = call.observations.analysis
        passed = before.analysis.passed
        if analysis is not None:
            verdict = check_verdict(complete_results(spec.analysis.metrics, analysis.metrics))
            assert verdict == "pass", f"stage completed on a {verdict} check"
            passed += 1
        else:
            assert before.analysis.last_verdict == "pass", "stage completed without a passing latest check"
        required = stage.min_checks if stage.min_checks is not None else spec.analysis.min_checks
        assert passed >= required, f"stage completed with {passed}/{required} passing checks"


def _route(actions: tuple[object, ...]) -> SetRoute:
    return next(a for a in actions if isinstance(a, SetRoute))


def run(steps: list[Step]) -> Invariants:
    invariants = Invariants()
    world = World(BASE_SPEC, watchers=[invariants])
    world.step(0)
    world.step(0)
    world.spec = with_version(world.spec, 2)
    for step in steps:
        world.spec = edited(world.spec, step)
        world.generation += step.edit != "none"
        world.verdict = step.verdict
        world.pods_ready = step.pods_ready
        world.route_follows = step.route_follows
        world.smoke_accuracy = 0.99 if step.smoke_ok else 0.5
        if world.status.candidate_version is not None:
            world.model_state[world.status.candidate_version] = step.model
        world.step(step.seconds, requests=step.requests)
        live = [v for v, d in world.deployments.items() if d.desired > 0]
        serving = {world.status.stable_version, world.status.retiring_version, world.status.candidate_version}
        assert set(live) <= serving, f"pods of {live} run but only {serving} are live"
    return invariants


PROPERTY_SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(st.lists(steps_strategy, min_size=5, max_size=40))
def test_invariants_hold_over_random_sequences(steps: list[Step]) -> None:
    invariants = run(steps)
    assert invariants.calls >= len(steps)
    event(f"reached {invariants.furthest}")


def healthy_step(seconds: int, approve: bool, verdict: Verdict = "pass") -> Step:
    requests = (Request("approve", "ab"),) if approve else ()
    return Step(seconds, verdict, "AVAILABLE", True, True, True, requests, "none", 0)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from([30, 45, 60, 120]), st.booleans()), min_size=30, max_size=36))
def test_a_healthy_candidate_is_promoted_exactly_when_its_approval_stage_is_approved(
    plan: list[tuple[int, bool]],
) -> None:
    steps = [healthy_step(seconds, approve and i % 7 == 0) for i, (seconds, approve) in enumerate(plan)]
    world = World(BASE_SPEC)
    world.step(0)
    world.step(0)
    world.spec = with_version(world.spec, 2)
    for step in steps:
        world.step(step.seconds, requests=step.requests)
    approved = any(h.outcome == "Approved" for h in world.status.history)
    assert world.status.phase == (Phase.SUCCEEDED if approved else Phase.AWAITING_APPROVAL)
    if approved:
        outcomes = [h.outcome for h in world.status.history]
        assert outcomes.index("Approved") < len(outcomes) - 1 == outcomes.index("Promoted", 1)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from([30, 60, 300]), st.sampled_from(["fail", "inconclusive"])), max_size=40))
def test_no_promotion_without_passing_checks(plan: list[tuple[int, Verdict]]) -> None:
    world = World(BASE_SPEC)
    world.step(0)
    world.step(0)
    world.spec = with_version(world.spec, 2)
    for seconds, verdict in plan:
        world.verdict = verdict
        world.step(seconds, requests=(Request("approve", "ab"),))
        assert world.status.stable_version == 1
        assert world.status.stage is None or world.status.stage.index <= STAGE_NAMES.index("shadow")
