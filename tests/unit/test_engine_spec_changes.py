"""Edits to the spec while a rollout runs: new version, revert, serving template, holdAt, stages."""

from __future__ import annotations

from test_engine_support import World, events, make_spec, rolling_out_at, route, stable_world

from modelrelease.api import Stage

STAGES = [
    {"name": "canary", "weight": 20, "minChecks": 1},
    {"name": "half", "weight": 50, "minChecks": 1},
    {"name": "full", "weight": 100, "minChecks": 1},
]


def world_at(stage: str, **spec: object) -> World:
    return rolling_out_at(STAGES, stage, **spec)


def test_a_third_version_mid_rollout_retires_the_candidate_and_starts_the_new_one() -> None:
    world = world_at("half")
    world.set_version(3)
    decision = world.step()
    assert decision.status.candidate_version == 3
    assert decision.status.stable_version == 1
    assert decision.status.stage is not None and decision.status.stage.index == 0
    assert route(decision).weight == 0
    assert [h.outcome for h in decision.status.history[-2:]] == ["Superseded", "Started"]
    assert world.deployments[2].desired == 0
    promoted = world.run_until(lambda d: d.status.phase == "Succeeded")
    assert promoted.status.stable_version == 3


def test_reverting_the_version_to_stable_mid_rollout_retires_the_candidate() -> None:
    world = world_at("half")
    world.set_version(1)
    decision = world.step()
    assert decision.status.phase == "Succeeded"
    assert decision.status.candidate_version is None
    assert decision.status.stable_version == 1
    assert route(decision).weight == 0
    assert events(decision, "SpecReverted")


def test_a_serving_change_restarts_the_candidate_from_its_first_stage() -> None:
    world = world_at("half")
    world.edit(serving=world.spec.serving.model_copy(update={"image": "tensorflow/serving:2.19.0"}))
    decision = world.step()
    assert decision.status.candidate_version == 2
    assert decision.status.stage is not None and decision.status.stage.name == "canary"
    assert decision.status.candidate_ready_at is None
    assert decision.status.analysis.checks == 0
    assert route(decision).weight == 0
    assert decision.status.history[-1].reason == "ServingChanged"


def test_a_replica_change_does_not_restart_the_candidate() -> None:
    world = world_at("half")
    world.edit(serving=world.spec.serving.model_copy(update={"replicas": 5}))
    decision = world.step()
    assert decision.status.stage is not None and decision.status.stage.name in ("half", "full")


def test_hold_at_advances_up_to_the_stage_and_waits_there_until_it_changes() -> None:
    world = stable_world(make_spec(1, stages=STAGES, analysis={"interval": "30s"}, holdAt="half"))
    world.set_version(2)
    world.run_until(lambda d: d.status.phase == "Paused")
    for _ in range(10):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "half"
    progressing = next(c for c in world.status.conditions if c.type == "Progressing")
    assert progressing.reason == "HeldAtStage"
    assert "held at stage half by spec.holdAt" in progressing.message
    world.edit(hold_at="full")
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "full"
    world.edit(hold_at="")
    world.run_until(lambda d: d.status.phase == "Succeeded")


def test_hold_at_an_earlier_stage_does_not_advance_further() -> None:
    world = world_at("half")
    world.edit(hold_at="canary")
    for _ in range(5):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "half"
    assert world.status.phase == "Paused"


def test_stages_edited_away_under_the_candidate_restart_it() -> None:
    world = world_at("half")
    world.edit(stages=[Stage(name="only", weight=100, min_checks=1)])
    decision = world.step()
    assert decision.status.stage is not None and decision.status.stage.name == "only"
    assert decision.status.history[-1].reason == "StagesChanged"
    world.run_until(lambda d: d.status.phase == "Succeeded")
