"""The candidate's pods as the engine sees them: the load deadline counts from their creation, and new pods are not ready.

An operator that wrote "rollout started" and then was down (or crashed
before it created the Deployment) must not count its downtime as load
time; a candidate whose Deployment someone deleted is recreated on new
pods, which get no traffic until they are ready again.
"""

from __future__ import annotations

from datetime import timedelta

from test_engine_support import World, events, make_spec, route, stable_world

from modelrelease.engine import EnsureDeployment, FixedReplicas, decide

STAGES = [{"name": "canary", "weight": 20, "duration": "10m"}, {"name": "full", "weight": 100}]


def started_but_not_applied(world: World) -> None:
    """v2's rollout decided and its status written, then the operator died before applying anything."""
    world.set_version(2)
    world.now += timedelta(seconds=30)
    decision = decide(world.spec, world.status, world.observations(), world.now, world.generation)
    assert decision.status.candidate_version == 2 and decision.status.candidate_started_at is not None
    world.status = decision.status
    assert 2 not in world.deployments


def test_operator_downtime_before_the_deployment_exists_is_not_load_time() -> None:
    world = stable_world()
    world.model_state[2] = "LOADING"
    started_but_not_applied(world)
    world.step(60 * 60)  # the operator comes back an hour later: no pods of v2 were ever created
    assert world.status.phase == "Progressing", world.status.message
    assert world.status.candidate_version == 2
    assert 2 in world.deployments  # this pass created them
    world.step(9 * 60)
    assert world.status.phase == "Progressing", world.status.message


def test_the_load_deadline_counts_from_the_pods_creation() -> None:
    world = stable_world()
    world.model_state[2] = "LOADING"
    started_but_not_applied(world)
    world.step(60 * 60)
    world.step(9 * 60)
    assert world.status.phase == "Progressing"
    world.step(2 * 60)  # 11 minutes after the pods were created
    assert world.status.phase == "RolledBack"
    assert "not AVAILABLE within 0:10:00" in world.status.message


def test_no_deadline_runs_while_no_pod_was_asked_for() -> None:
    world = stable_world()
    world.model_state[2] = "LOADING"
    started_but_not_applied(world)
    world.now += timedelta(hours=2)
    decision = decide(world.spec, world.status, world.observations(), world.now, world.generation)
    assert decision.status.phase == "Progressing"
    assert "waiting for v2 to load" in decision.status.message


def canary_world() -> World:
    """v1 stable, v2 ready and serving its canary weight."""
    world = stable_world(make_spec(1, stages=STAGES, analysis={"interval": "30s"}))
    world.set_version(2)
    world.run_until(lambda d: d.status.candidate_ready_at is not None and route(d).weight == 20)
    return world


def test_a_deleted_candidate_deployment_is_not_ready_and_gets_no_traffic() -> None:
    world = canary_world()
    runs = world.analysis_runs
    world.delete_deployment(2)
    world.pods_ready = False
    decision = world.step(30)
    assert decision.status.candidate_ready_at is None
    assert events(decision, "CandidateRestarted")
    assert route(decision).weight == 0
    assert decision.status.stage is not None and decision.status.stage.actual_weight == 0
    assert 2 in world.deployments  # recreated by the same pass
    assert world.analysis_runs == runs  # no check judged pods that are being replaced
    assert decision.status.phase == "Progressing"


def test_a_recreated_candidate_deployment_waits_for_its_new_pods_then_resumes() -> None:
    world = canary_world()
    checks_before = world.status.analysis.checks
    world.delete_deployment(2)
    world.pods_ready = False
    world.step(5)
    for _ in range(3):
        decision = world.step(30)
        assert decision.status.candidate_ready_at is None
        assert route(decision).weight == 0
        assert decision.status.phase == "Progressing", decision.status.message
        assert decision.status.analysis.checks == checks_before
    world.pods_ready = True
    decision = world.run_until(lambda d: d.status.candidate_ready_at is not None, max_steps=3)
    assert events(decision, "CandidateReady")
    world.run_until(lambda d: d.status.phase == "Succeeded", seconds=60)


def test_a_deployment_created_before_the_candidate_was_ready_changes_nothing() -> None:
    world = canary_world()
    ready_at = world.status.candidate_ready_at
    for _ in range(3):
        decision = world.step(30)
        assert decision.status.candidate_ready_at == ready_at
        assert not events(decision, "CandidateRestarted")


def test_a_candidate_deployment_recreated_between_two_passes_is_not_ready() -> None:
    world = canary_world()
    world.delete_deployment(2)
    world.pods_ready = False
    world.now += timedelta(seconds=10)
    world.apply((EnsureDeployment(2, "canary", FixedReplicas(1)),))  # someone else recreated it
    decision = world.step(10)
    assert decision.status.candidate_ready_at is None
    assert events(decision, "CandidateRestarted")
    assert "was recreated" in events(decision, "CandidateRestarted")[0].message
    assert route(decision).weight == 0
