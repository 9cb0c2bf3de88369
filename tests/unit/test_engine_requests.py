"""Manual requests read from annotations: approve, promote, abort, retry."""

from __future__ import annotations

from test_engine_support import World, ensured, events, rolling_out_at, route, stable_world

from modelrelease.engine import ConsumeRequest, FixedReplicas, Request, ScaleToZero
from modelrelease.engine.actions import EnsureDeployment

APPROVAL = [
    {"name": "canary", "weight": 20, "minChecks": 1},
    {"name": "ab", "weight": 50, "minChecks": 1, "approval": True},
    {"name": "full", "weight": 100, "minChecks": 1},
]


def world_at(stage: str, **spec: object) -> World:
    return rolling_out_at(APPROVAL, stage, **spec)


def test_an_approval_stage_waits_for_an_approve_request() -> None:
    world = world_at("ab")
    for _ in range(10):
        world.step()
    assert world.status.phase == "AwaitingApproval"
    assert world.status.stage is not None and world.status.stage.name == "ab"
    assert "modelrelease.io/approve: ab" in world.status.message
    decision = world.step(requests=(Request("approve", "ab"),))
    assert ConsumeRequest(Request("approve", "ab")) in decision.actions
    assert events(decision, "Approved")
    assert decision.status.stage is not None and decision.status.stage.name == "full"
    assert [h.outcome for h in decision.status.history if h.stage == "ab"] == ["Approved", "StageCompleted"]


def test_an_approval_given_early_is_kept_until_the_stage_is_otherwise_done() -> None:
    world = world_at("ab")
    world.verdict = "inconclusive"
    world.step(requests=(Request("approve", "ab"),))
    assert world.status.stage is not None and world.status.stage.approved
    world.verdict = "pass"
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "full")


def test_an_approval_for_another_stage_is_consumed_and_ignored_with_a_warning() -> None:
    world = world_at("canary")
    decision = world.step(requests=(Request("approve", "ab"),))
    assert ConsumeRequest(Request("approve", "ab")) in decision.actions
    warning = events(decision, "RequestIgnored")[0]
    assert warning.type == "Warning" and "current stage is canary" in warning.message
    world.run_until(lambda d: d.status.phase == "AwaitingApproval")


def test_a_promote_request_promotes_at_once_and_keeps_the_old_stable_until_the_new_one_is_full() -> None:
    world = world_at("canary")
    world.pods_ready = False
    decision = world.step(requests=(Request("promote"),))
    assert decision.status.phase == "Succeeded"
    assert decision.status.stable_version == 2
    assert decision.status.retiring_version == 1
    assert decision.status.history[-1].reason == "PromoteRequested"
    assert ensured(decision, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    assert ensured(decision, 2) == EnsureDeployment(2, "stable", FixedReplicas(3))
    for _ in range(3):
        assert ScaleToZero(1) not in world.step().actions
    world.pods_ready = True
    world.step()
    assert ScaleToZero(1) in world.step().actions


def test_an_abort_request_rolls_back_even_without_automatic_rollback() -> None:
    world = world_at("ab", rollback={"automatic": False})
    decision = world.step(requests=(Request("abort"),))
    assert decision.status.phase == "RolledBack"
    assert decision.status.history[-1].outcome == "Aborted"
    assert route(decision).weight == 0


def test_a_retry_request_tries_a_rolled_back_version_again() -> None:
    world = world_at("canary")
    world.model_state[2] = "FAILED"
    world.step()
    assert world.status.phase == "RolledBack"
    world.model_state[2] = "AVAILABLE"
    decision = world.step(requests=(Request("retry"),))
    assert decision.status.phase == "Progressing"
    assert decision.status.candidate_version == 2
    assert decision.status.stage is not None and decision.status.stage.index == 0
    assert "Retried" in [h.outcome for h in decision.status.history]


def test_a_retry_in_failed_restarts_the_candidate_from_its_first_stage() -> None:
    world = world_at("ab", rollback={"automatic": False})
    world.verdict = "fail"
    world.step()
    world.step()
    assert world.status.phase == "Failed"
    world.verdict = "pass"
    decision = world.step(requests=(Request("retry"),))
    assert decision.status.phase == "Progressing"
    assert decision.status.stage is not None and decision.status.stage.name == "canary"
    assert decision.status.analysis.checks == 0
    assert route(decision).weight == 0


def test_requests_without_a_rollout_are_consumed_and_ignored() -> None:
    world = stable_world()
    requests = (Request("promote"), Request("abort"), Request("retry"), Request("approve", "x"))
    decision = world.step(requests=requests)
    assert [a for a in decision.actions if isinstance(a, ConsumeRequest)] == [ConsumeRequest(r) for r in requests]
    assert len(events(decision, "RequestIgnored")) == 4
    assert decision.status.phase == "Succeeded"


def test_a_pause_request_freezes_the_rollout_without_spec_until_a_resume_request() -> None:
    world = world_at("canary")
    decision = world.step(requests=(Request("pause"),))
    assert ConsumeRequest(Request("pause")) in decision.actions
    assert decision.status.paused_by_request and decision.status.phase == "Paused"
    assert "modelrelease.io/resume" in decision.status.message
    assert not world.spec.paused
    for _ in range(10):
        assert world.step(60).status.phase == "Paused"
    assert world.status.stage is not None and world.status.stage.name == "canary"
    resumed = world.step(requests=(Request("resume"),))
    assert not resumed.status.paused_by_request
    assert [h.outcome for h in resumed.status.history if h.stage == "canary"][:2] == ["Paused", "Resumed"]
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "ab")


def test_a_paused_rollout_still_rolls_back_on_failure_and_the_next_rollout_starts_unpaused() -> None:
    world = world_at("canary")
    world.run_until(lambda d: d.status.candidate_ready_at is not None)
    world.step(requests=(Request("pause"),))
    world.verdict = "fail"
    world.run_until(lambda d: d.status.phase == "RolledBack", max_steps=10)
    assert not world.status.paused_by_request


def test_pause_and_resume_are_refused_when_they_make_no_sense() -> None:
    world = stable_world()
    refused = world.step(requests=(Request("pause"),))
    assert "no rollout in progress" in events(refused, "RequestIgnored")[0].message
    world = world_at("canary", paused=True)
    refused = world.step(requests=(Request("resume"),))
    assert "spec.paused is true" in events(refused, "RequestIgnored")[0].message
    world = world_at("canary")
    world.step(requests=(Request("pause"),))
    again = world.step(requests=(Request("pause"),))
    assert "already paused" in events(again, "RequestIgnored")[0].message
