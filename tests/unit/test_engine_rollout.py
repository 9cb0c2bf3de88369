"""How a healthy rollout moves: first version, gates before traffic, stage completion, promotion."""

from __future__ import annotations

from test_engine_support import (
    T0,
    World,
    ensured,
    events,
    make_spec,
    results,
    rolling_out_at,
    route,
    stable_world,
)

from modelrelease.api import ModelReleaseStatus
from modelrelease.engine import (
    AnalysisResult,
    DeleteDeployment,
    DeploymentState,
    FixedReplicas,
    Observations,
    RunAnalysis,
    RunSmoke,
    ScaleToZero,
    WeightedReplicas,
    decide,
)
from modelrelease.engine.actions import EnsureDeployment
from modelrelease.engine.clock import format_time

TRAFFIC_ONLY = [{"name": "canary", "weight": 20, "duration": "2m"}, {"name": "full", "weight": 100}]


def test_first_version_becomes_stable_without_stages() -> None:
    world = World(make_spec(1))
    first = world.step(0)
    assert first.status.phase == "Initializing"
    assert first.status.stable_version == 1
    assert ensured(first, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    assert not any(isinstance(a, RunSmoke | RunAnalysis) for a in first.actions)
    second = world.step(0)
    assert second.status.phase == "Succeeded"
    assert second.status.candidate_version is None
    assert [h.outcome for h in second.status.history] == ["Promoted"]


def test_first_version_is_not_succeeded_before_full_capacity() -> None:
    world = World(make_spec(1), pods_ready=False)
    world.step(0)
    assert world.step(60).status.phase == "Initializing"


def test_version_change_starts_a_rollout_with_one_replica_and_no_traffic() -> None:
    world = stable_world()
    world.set_version(2)
    decision = world.step()
    assert decision.status.phase == "Progressing"
    assert decision.status.candidate_version == 2
    assert ensured(decision, 2) == EnsureDeployment(2, "canary", FixedReplicas(1))
    assert route(decision).weight == 0
    assert events(decision, "RolloutStarted")


def test_no_traffic_or_smoke_before_the_model_is_available() -> None:
    world = stable_world()
    world.set_version(2)
    world.model_state[2] = "LOADING"
    for _ in range(5):
        decision = world.step()
        assert route(decision).weight == 0
        assert route(decision).mirror == 0
    assert world.smoke_runs == 0
    assert world.status.candidate_ready_at is None
    world.model_state[2] = "AVAILABLE"
    world.step()
    assert world.status.candidate_ready_at is not None
    assert world.smoke_runs == 1


def test_no_traffic_before_the_candidate_pods_are_ready() -> None:
    world = stable_world()
    world.set_version(2)
    world.pods_ready = False
    world.step()
    world.step()
    assert world.status.candidate_ready_at is None
    assert world.smoke_runs == 0


def test_smoke_runs_before_any_user_traffic() -> None:
    world = stable_world()
    world.set_version(2)
    world.step()
    decision = world.step()
    assert world.smoke_runs == 1
    smoke_event = events(decision, "SmokePassed")
    assert smoke_event
    # The smoke stage itself never routed users to the candidate.
    assert all(route(d).weight == 0 and route(d).mirror == 0 for d in world.decisions[:-1])
    assert world.status.stage is not None and world.status.stage.name == "canary-10"


def test_stage_waits_for_its_duration_even_with_enough_passing_checks() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "10s", "minChecks": 1}))
    world.set_version(2)
    world.step()
    world.step()
    for _ in range(10):
        world.step(10)
    assert world.status.analysis.passed >= 3
    assert world.status.stage is not None and world.status.stage.name == "canary"
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "full", seconds=10)


def test_stage_waits_for_enough_passing_checks_after_its_duration() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "1m", "minChecks": 5}))
    world.set_version(2)
    world.step()
    world.step()  # ready: canary entered
    for _ in range(4):
        world.step(60)
    assert world.status.analysis.passed == 4
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert "4/5 passing checks" in world.status.message
    world.step(60)
    assert world.status.stage is not None and world.status.stage.name == "full"


def test_a_stage_min_checks_overrides_the_analysis_default() -> None:
    stages = [{"name": "canary", "weight": 20, "minChecks": 1}, {"name": "full", "weight": 100}]
    world = stable_world(make_spec(1, stages=stages, analysis={"interval": "30s", "minChecks": 10}))
    world.set_version(2)
    world.step()
    world.step()
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "full"


def test_stage_waits_until_the_router_reaches_the_weight() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "30s", "minChecks": 1}))
    world.route_follows = False
    world.set_version(2)
    for _ in range(10):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert "router reports 0% of 20%" in world.status.message
    world.route_follows = True
    world.step()
    world.step()
    reached = world.status.stage
    assert reached is not None and reached.name == "canary" and reached.reached_at == format_time(world.now)
    # Five minutes passed while the router lagged; the stage's two minutes are spent at its weight.
    world.step(60)
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert "stage time until 2026-01-01T00:08:00Z" in world.status.message
    world.step(60)
    assert world.status.stage is not None and world.status.stage.name == "full"


def test_the_router_verdict_on_reaching_the_weight_is_trusted() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "30s", "minChecks": 1}))
    world.route_reached = False
    world.set_version(2)
    for _ in range(10):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary"
    world.route_reached = True
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary", "its 2 minutes start now"
    for _ in range(4):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "full"
    # The full stage needs no checks (nothing to compare with): it promotes once the router reports it reached,
    # on the next pass (a route observed for canary says nothing of full's).
    world.step()
    assert [entry.outcome for entry in world.status.history[-3:]] == ["StageCompleted", "StageCompleted", "Promoted"]
    assert world.status.stable_version == 2


# The e2e promotion stages: with 3 stable replicas the replicas router makes 25% with one pod, 50% with three.
CANARY_25_50 = [
    {"name": "canary-25", "weight": 25, "duration": "8s"},
    {"name": "canary-50", "weight": 50, "duration": "15s"},
    {"name": "full", "weight": 100},
]


def test_the_next_stage_is_not_reached_on_the_route_observed_for_the_stage_that_completed() -> None:
    # The replicas router judges ``reached`` against the plan of the stage the pass began in (reconcile's
    # probe): canary-25's one pod.  A check is due on every 2 s pass, so the pass that completes canary-25
    # also runs a check; its second engine call must not start canary-50's clock on canary-25's verdict.
    world = rolling_out_at(CANARY_25_50, "canary-25", analysis={"interval": "2s", "minChecks": 1})
    world.route_reached = True
    entered = world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "canary-50", seconds=2)
    assert entered.status.stage is not None and entered.status.stage.reached_at is None
    completed = [h for h in entered.status.history if h.outcome == "StageCompleted"]
    assert completed[-1].stage == "canary-25"
    assert completed[-1].message == f"stage canary-25 passed ({world.analysis_runs} passing checks)"


def test_analysis_is_requested_once_per_interval() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "1m", "minChecks": 50}))
    world.set_version(2)
    world.step()
    world.step()
    for _ in range(12):
        world.step(20)
    assert world.analysis_runs == 4
    assert world.status.analysis.checks == 4


def test_results_handed_in_before_a_check_is_due_are_not_counted() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY, analysis={"interval": "1m"}))
    world.set_version(2)
    world.step()
    world.step()
    world.step(60)
    assert world.status.analysis.checks == 1

    early = decide(
        world.spec,
        world.status,
        Observations(analysis=AnalysisResult(2, results("pass"))),
        world.now,
        world.generation,
    )
    assert early.status.analysis.checks == 1


def test_candidate_replicas_follow_the_stage_weight() -> None:
    world = stable_world(make_spec(1, stages=TRAFFIC_ONLY))
    world.set_version(2)
    world.step()
    decision = world.step()
    assert ensured(decision, 2) == EnsureDeployment(2, "canary", WeightedReplicas(percent=20, full=3))
    assert route(decision).weight == 20


def test_header_match_of_an_ab_stage_is_passed_to_the_router() -> None:
    stages = [{"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}]}]
    world = stable_world(make_spec(1, stages=stages, traffic={"router": "istio", "istio": {"virtualService": "d"}}))
    world.set_version(2)
    world.step()
    assert route(world.step()).match == ({"x-cohort": "b"},)


def test_a_full_rollout_promotes_the_candidate_and_scales_the_old_stable_to_zero() -> None:
    world = stable_world()
    world.set_version(2)
    promoted = world.run_until(lambda d: d.status.phase == "Succeeded")
    assert promoted.status.stable_version == 2
    assert promoted.status.candidate_version is None
    assert [h.outcome for h in promoted.status.history][-1] == "Promoted"
    assert ensured(promoted, 2) == EnsureDeployment(2, "stable", FixedReplicas(3))
    assert route(promoted).candidate_version is None
    # The full stage already ran the candidate at full capacity, so the handover is immediate.
    assert promoted.status.retiring_version is None
    assert ScaleToZero(1) in promoted.actions
    completed = [h.stage for h in promoted.status.history if h.outcome == "StageCompleted"]
    assert completed == ["smoke", "canary-10", "canary-50", "full"]


def test_old_versions_beyond_the_history_limit_are_deleted() -> None:
    spec = make_spec(1, stages=[{"name": "full", "weight": 100, "minChecks": 1}], revisionHistoryLimit=1)
    world = stable_world(spec)
    for version in (2, 3, 4):
        world.set_version(version)
        world.run_until(lambda d: d.status.phase == "Succeeded" and d.status.retiring_version is None)
    world.step()
    assert sorted(world.deployments) == [3, 4]
    assert world.deployments[3].desired == 0
    assert all(not isinstance(a, DeleteDeployment) or a.version in (1, 2) for d in world.decisions for a in d.actions)


def test_decide_does_not_change_the_status_it_is_given() -> None:
    status = ModelReleaseStatus()
    before = status.model_dump()
    decide(make_spec(1), status, Observations(deployments=(DeploymentState(1, 3, 3),)), T0, 1)
    assert status.model_dump() == before


def test_a_restarted_operator_resumes_from_status_alone() -> None:
    world = stable_world()
    world.set_version(2)
    for _ in range(6):
        world.step()
    twin = World(world.spec, status=ModelReleaseStatus.model_validate_json(world.status.model_dump_json(by_alias=True)))
    twin.now, twin.generation, twin.deployments = world.now, world.generation, dict(world.deployments)
    twin.created_at, twin.pods_since = dict(world.created_at), dict(world.pods_since)
    twin.observed_route = world.observed_route
    for _ in range(6):
        assert twin.step().actions == world.step().actions
    assert twin.status == world.status


def test_full_stage_honours_min_checks_when_the_user_asks_for_them() -> None:
    stages = [{"name": "canary", "weight": 20}, {"name": "full", "weight": 100, "minChecks": 2}]
    world = stable_world(make_spec(1, stages=stages, analysis={"interval": "30s", "minChecks": 1}))
    world.set_version(2)
    stages_seen = []
    for _ in range(20):
        world.step(30)
        if world.status.stage is not None:
            stages_seen.append((world.status.stage.name, world.status.analysis.passed))
    full_passes = [passed for name, passed in stages_seen if name == "full"]
    assert full_passes, stages_seen
    assert world.status.stable_version == 2
    assert max(full_passes) >= 1  # checks ran at the full stage before promotion


def test_passes_that_observe_nothing_new_leave_the_status_unchanged() -> None:
    # A status that changes on every pass (a countdown in the message) would cost an API write per pass.
    stages = [{"name": "canary", "weight": 20, "duration": "10m"}, {"name": "full", "weight": 100}]
    world = stable_world(make_spec(1, stages=stages, analysis={"interval": "5m", "minChecks": 1}))
    world.set_version(2)
    for _ in range(4):
        world.step(1)
    assert world.status.stage is not None and world.status.stage.name == "canary"
    before = world.status.model_dump()
    world.step(1)
    assert world.status.model_dump() == before
    assert "stage time until" in world.status.message
