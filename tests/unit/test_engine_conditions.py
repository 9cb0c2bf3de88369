"""Conditions, events and history as a user reads them from a running release."""

from __future__ import annotations

from test_engine_support import World, events, make_spec, stable_world

from modelrelease.api import Condition, ModelReleaseStatus

STAGES = [
    {"name": "canary", "weight": 20, "minChecks": 1},
    {"name": "ab", "weight": 50, "minChecks": 1, "approval": True},
    {"name": "full", "weight": 100, "minChecks": 1},
]


def condition(status: ModelReleaseStatus, type_: str) -> Condition:
    return next(c for c in status.conditions if c.type == type_)


def canary_world() -> World:
    world = stable_world(make_spec(1, stages=STAGES, analysis={"interval": "30s", "failureLimit": 3}))
    world.set_version(2)
    world.step()
    world.step()
    return world


def test_every_stage_change_emits_an_event_and_a_history_entry() -> None:
    world = canary_world()
    world.run_until(lambda d: d.status.phase == "AwaitingApproval")
    advanced = [e for d in world.decisions for e in events(d, "StageAdvanced")]
    assert [e.message for e in advanced] == ["v2: stage canary passed; entering ab"]
    assert [h.stage for h in world.status.history if h.outcome == "StageCompleted"] == ["canary"]


def test_the_analysis_condition_follows_the_latest_check() -> None:
    world = canary_world()
    world.step()
    passing = condition(world.status, "Analysis")
    assert (passing.status, passing.reason) == ("True", "ChecksPassing")
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "ab")
    world.verdict = "fail"
    world.step()
    failing = condition(world.status, "Analysis")
    assert (failing.status, failing.reason) == ("False", "CheckFailed")
    assert failing.last_transition_time == world.status.analysis.last_check_at


def test_awaiting_approval_is_visible_in_the_progressing_condition() -> None:
    world = canary_world()
    world.run_until(lambda d: d.status.phase == "AwaitingApproval")
    progressing = condition(world.status, "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "AwaitingApproval")
    assert "modelrelease.io/approve: ab" in progressing.message


def test_ready_keeps_its_transition_time_through_a_whole_rollout() -> None:
    world = canary_world()
    since = condition(world.status, "Ready").last_transition_time
    world.run_until(lambda d: d.status.phase == "AwaitingApproval")
    assert condition(world.status, "Ready").last_transition_time == since
    assert condition(world.status, "Ready").status == "True"


def test_status_records_the_generation_it_reflects() -> None:
    world = canary_world()
    world.edit(paused=True)
    world.step()
    assert world.status.observed_generation == world.generation
    assert all(c.observed_generation == world.generation for c in world.status.conditions)


def test_a_stable_that_loses_pods_is_reported_not_ready() -> None:
    world = stable_world()
    world.pods_ready = False
    world.deployments = {1: world.deployments[1].__class__(1, 3, 1)}
    world.step()
    ready = condition(world.status, "Ready")
    assert (ready.status, ready.reason) == ("False", "StableNotReady")
    assert "1/3" in ready.message
