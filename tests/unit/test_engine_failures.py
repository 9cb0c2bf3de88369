"""What happens when a candidate is bad or the evidence is missing: rollback, Failed, pauses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from test_engine_support import World, ensured, events, make_spec, route, stable_world

from modelrelease.api import MetricResult
from modelrelease.engine import AnalysisResult, FixedReplicas, ScaleToZero, decide
from modelrelease.engine.actions import EnsureDeployment

TRAFFIC_ONLY = [{"name": "canary", "weight": 20, "duration": "2m"}, {"name": "full", "weight": 100}]


def canary_world(**spec: object) -> World:
    """v1 stable, v2 ready and in its first traffic stage (canary, 20%)."""
    body: dict[str, object] = {"stages": TRAFFIC_ONLY, "analysis": {"interval": "30s", "failureLimit": 2}}
    body.update(spec)
    world = stable_world(make_spec(1, **body))
    world.set_version(2)
    world.step()
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary"
    return world


def assert_rolled_back(world: World, version: int = 2) -> None:
    decision = world.decisions[-1]
    assert decision.status.phase == "RolledBack"
    assert decision.status.candidate_version is None
    assert decision.status.rejected_version == version
    assert route(decision).weight == 0 and route(decision).mirror == 0
    assert ensured(decision, version) is None
    assert ensured(decision, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    assert decision.status.history[-1].outcome == "RolledBack"


def test_failure_limit_rolls_back_with_a_warning_naming_the_metric_and_values() -> None:
    world = canary_world()
    world.verdict = "fail"
    world.step()
    assert world.status.phase == "Progressing"
    assert events(world.decisions[-1], "CheckFailed")
    decision = world.step()
    assert_rolled_back(world)
    warning = events(decision, "AnalysisFailed")[0]
    assert warning.type == "Warning"
    assert "error-rate candidate 0.001 baseline 0.001" in warning.message
    assert "at stage canary" in warning.message
    # The candidate is now an old version: kept for a fast retry, but at zero replicas.
    assert ScaleToZero(2) in decision.actions


def test_failures_are_counted_per_stage_not_in_a_row() -> None:
    world = canary_world(analysis={"interval": "30s", "failureLimit": 2, "minChecks": 10})
    world.verdict = "fail"
    world.step()
    world.verdict = "pass"
    world.step()
    world.step()
    world.verdict = "fail"
    world.step()
    assert_rolled_back(world)


def test_a_model_that_fails_to_load_rolls_back() -> None:
    world = stable_world()
    world.set_version(2)
    world.model_state[2] = "FAILED"
    world.step()
    world.step()
    assert_rolled_back(world)
    assert events(world.decisions[-1], "ModelLoadFailed")


def test_a_model_not_available_within_the_deadline_rolls_back() -> None:
    world = stable_world()
    world.set_version(2)
    world.model_state[2] = "LOADING"
    world.step()
    world.step(9 * 60)
    assert world.status.phase == "Progressing"
    world.step(2 * 60)
    assert_rolled_back(world)
    assert "not AVAILABLE within" in world.status.message


def test_a_failed_smoke_test_rolls_back_before_any_user_traffic() -> None:
    world = stable_world()
    world.set_version(2)
    world.smoke_accuracy = 0.5
    world.step()
    world.step()
    assert_rolled_back(world)
    assert "smoke accuracy 0.5" in world.status.message
    assert all(route(d).weight == 0 for d in world.decisions)


def test_a_smoke_test_that_cannot_run_counts_as_failed() -> None:
    world = stable_world()
    world.set_version(2)
    world.smoke_error = "configmap digits-golden not found"
    world.step()
    world.step()
    assert_rolled_back(world)


def test_a_smoke_run_without_answers_is_retried_not_failed() -> None:
    world = stable_world()
    world.set_version(2)
    world.smoke_inconclusive = "Predict: UNAVAILABLE: connection refused"
    world.step()
    decision = world.step()
    assert decision.status.phase == "Progressing", decision.status.message
    assert decision.status.stage is not None and decision.status.stage.smoke_inconclusive == 1
    assert events(decision, "SmokeInconclusive")
    assert route(decision).weight == 0
    world.smoke_inconclusive = None
    world.step()
    assert [h.outcome for h in world.status.history][-1:] == ["StageCompleted"]
    assert any(h.outcome == "SmokePassed" for h in world.status.history)
    assert world.status.phase == "Progressing"
    assert world.smoke_runs == 2


def test_smoke_runs_without_answers_fail_the_candidate_at_the_attempt_limit() -> None:
    world = stable_world()
    world.set_version(2)
    world.smoke_inconclusive = "Predict: UNAVAILABLE: connection refused"
    world.step()
    world.step()
    world.step()
    assert world.status.phase == "Progressing"
    world.step()
    assert world.smoke_runs == 3
    assert_rolled_back(world)
    assert "no complete set of answers in 3 runs in a row" in world.status.message
    assert "UNAVAILABLE" in world.status.message


def test_without_automatic_rollback_a_failure_stops_in_failed_with_traffic_frozen() -> None:
    world = canary_world(rollback={"automatic": False})
    world.verdict = "fail"
    world.step()
    decision = world.step()
    assert decision.status.phase == "Failed"
    assert decision.status.candidate_version == 2
    assert route(decision).weight == 20
    for _ in range(5):
        later = world.step(600)
        assert later.status.phase == "Failed"
        assert route(later).weight == 20
    assert world.analysis_runs == 2


def test_a_rolled_back_version_is_not_retried_until_the_version_changes() -> None:
    world = canary_world()
    world.verdict = "fail"
    world.step()
    world.step()
    for _ in range(5):
        assert world.step(600).status.candidate_version is None
    assert "annotate modelrelease.io/retry" in world.status.message
    world.set_version(3)
    assert world.step().status.candidate_version == 3


def test_reverting_the_version_after_a_rollback_returns_to_succeeded() -> None:
    world = canary_world()
    world.model_state[2] = "FAILED"
    world.step()
    world.set_version(1)
    decision = world.step()
    assert decision.status.phase == "Succeeded"
    assert decision.status.rejected_version is None


def test_inconclusive_checks_never_complete_a_stage() -> None:
    world = canary_world(analysis={"interval": "30s", "minChecks": 1, "inconclusiveLimit": 100})
    world.verdict = "inconclusive"
    for _ in range(20):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert world.status.analysis.passed == 0


def test_an_inconclusive_latest_check_holds_a_stage_that_had_enough_passes() -> None:
    world = canary_world(analysis={"interval": "30s", "minChecks": 1, "inconclusiveLimit": 100})
    world.step()
    assert world.status.analysis.passed == 1
    world.verdict = "inconclusive"
    for _ in range(10):
        world.step()
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert "latest check was inconclusive" in world.status.message
    world.verdict = "pass"
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "full"


def test_inconclusive_limit_in_a_row_pauses_and_resumes_when_data_returns() -> None:
    world = canary_world(analysis={"interval": "30s", "inconclusiveLimit": 3})
    world.verdict = "inconclusive"
    world.step()
    world.step()
    assert world.status.phase == "Progressing"
    decision = world.step()
    assert decision.status.phase == "Paused"
    assert events(decision, "AnalysisInconclusive")
    progressing = next(c for c in decision.status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "AnalysisInconclusive")
    world.step()
    assert world.status.phase == "Paused"
    world.verdict = "pass"
    resumed = world.step()
    assert resumed.status.phase == "Progressing"
    assert events(resumed, "AnalysisResumed")


def test_a_metric_missing_from_a_check_makes_it_inconclusive() -> None:
    world = canary_world()
    world.step(30)
    only_one = AnalysisResult(2, (MetricResult(name="error-rate", verdict="pass"),))
    observed = replace(world.observations(), analysis=only_one)
    decision = decide(world.spec, world.status, observed, world.now + timedelta(seconds=30), world.generation)
    assert decision.status.analysis.last_verdict == "inconclusive"
    missing = next(m for m in decision.status.analysis.metrics if m.name == "latency-p99")
    assert missing.verdict == "inconclusive"


def test_spec_paused_freezes_progress() -> None:
    world = canary_world(analysis={"interval": "30s", "minChecks": 1})
    world.edit(paused=True)
    for _ in range(10):
        decision = world.step(60)
        assert decision.status.phase == "Paused"
    assert world.status.stage is not None and world.status.stage.name == "canary"
    assert route(world.decisions[-1]).weight == 20
    world.edit(paused=False)
    world.step()
    assert world.status.stage is not None and world.status.stage.name == "full"


def test_spec_paused_holds_a_new_candidate_before_any_traffic() -> None:
    world = stable_world()
    world.edit(paused=True)
    world.set_version(2)
    for _ in range(5):
        world.step()
    assert world.status.phase == "Paused"
    assert world.status.candidate_ready_at is None
    assert world.smoke_runs == 0


def test_spec_paused_does_not_prevent_rollback_on_failure() -> None:
    world = canary_world()
    world.edit(paused=True)
    world.verdict = "fail"
    world.step()
    world.step()
    assert_rolled_back(world)


def test_spec_paused_does_not_prevent_rollback_when_the_model_fails() -> None:
    world = canary_world()
    world.edit(paused=True)
    world.model_state[2] = "FAILED"
    world.step()
    assert_rolled_back(world)


def test_one_sequential_fail_rolls_back_at_once_naming_the_metric_and_its_evidence() -> None:
    world = canary_world(analysis={"interval": "30s", "failureLimit": 5})
    world.verdict = "fail"
    evidence = "accuracy 0.96 (3653/3802) vs stable 0.98 (5141/5228): drop 0.02 > maxDrop 0.01 with evidence 312"
    world.result_fields = {"judge": "sequential", "message": evidence}
    decision = world.step()
    assert_rolled_back(world)
    warning = events(decision, "AnalysisFailed")[0]
    assert "sequential test failed" in warning.message and "(3653/3802)" in warning.message
    assert "(5141/5228)" in warning.message and "evidence 312" in warning.message


def test_undecided_checks_wait_without_pausing_while_checks_without_data_pause() -> None:
    world = canary_world(analysis={"interval": "30s", "inconclusiveLimit": 3})
    world.verdict = "inconclusive"
    world.result_fields = {"undecided": True}
    for _ in range(6):
        world.step()
    assert world.status.phase == "Progressing" and world.status.analysis.consecutive_inconclusive == 0
    assert "the latest check was inconclusive" in world.status.message
    world.result_fields = {}
    for _ in range(3):
        world.step()
    assert world.status.analysis.consecutive_inconclusive == 3
    assert events(world.decisions[-1], "AnalysisInconclusive")


def test_checks_carry_the_stage_pools_from_when_its_weight_was_reached() -> None:
    world = canary_world()
    world.step()
    world.step()
    first, second = world.requested[-2:]
    assert world.status.stage is not None and first.since == world.status.stage.reached_at is not None
    assert first.at is not None and second.at is not None and first.at < second.at
    assert [m.name for m in second.previous] == [m.name for m in world.status.analysis.metrics]


def test_no_check_runs_before_the_router_reports_the_stage_weight() -> None:
    world = canary_world()
    world.route_reached = False
    # A new stage: the canary's weight is never reported, so its pools never start.
    world.set_version(3)
    for _ in range(4):
        world.step()
    assert world.status.candidate_version == 3 and world.status.analysis.checks == 0
