"""The bake after a promotion, lifecycle webhooks and lineage, as engine rules (no I/O, time is a number)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_support import Call, World, ensured, events, make_spec, route, stable_world

from modelrelease.api.status import MetricPool, PooledPart, VersionCounts, WebhookOutcome
from modelrelease.engine import EnsureDeployment, FixedReplicas, Request, RunAnalysis, ScaleToZero
from modelrelease.engine.observations import WebhookResult

STAGES = [{"name": "canary", "weight": 50}, {"name": "full", "weight": 100}]
SEQUENTIAL_FAIL = {"judge": "sequential", "message": "accuracy 0.1 (10/100) below min 0.8"}


def baking_world(bake: str = "5m", delay: str | None = None, **spec: Any) -> World:
    rollback: dict[str, Any] = {"bakeTime": bake}
    if delay is not None:
        rollback["scaleDownDelay"] = delay
    body: dict[str, Any] = {"stages": STAGES, "analysis": {"interval": "30s", "minChecks": 1}, "rollback": rollback}
    body.update(spec)
    world = stable_world(make_spec(1, **body))
    world.set_version(2)
    world.run_until(lambda d: d.status.stable_version == 2)
    return world


def answer(world: World, hook: str, ok: bool, code: int | None = 200) -> None:
    pending = next(p for p in world.status.webhooks if p.hook == hook)
    outcome = WebhookOutcome(hook=pending.hook, url=f"http://hooks.example/{hook}", ok=ok, code=code, attempts=1)
    world.answers.append(WebhookResult(pending.version, pending.since, outcome))


def test_promotion_starts_a_bake_with_the_previous_version_warm_and_serving_nobody() -> None:
    world = baking_world()
    decision = world.step()
    status = decision.status
    assert status.phase == "Baking" and status.stable_version == 2 and status.bake is not None
    assert status.bake.previous_version == 1 and status.bake.state == "Baking"
    assert ensured(decision, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    assert ScaleToZero(1) not in decision.actions
    routed = route(decision)
    assert (routed.stable_version, routed.candidate_version, routed.weight) == (2, 1, 0)
    checks = [r for r in world.requested if r.stage == "bake"]
    assert checks and all(r.frozen_baseline and r.baseline_version == 1 and r.candidate_version == 2 for r in checks)


def test_a_bake_without_a_failed_check_stands_and_the_previous_version_goes_to_zero() -> None:
    world = baking_world(bake="2m")
    passed = world.run_until(lambda d: d.status.phase == "Succeeded")
    assert passed.status.stable_version == 2
    assert [h.outcome for h in passed.status.history][-1] == "BakePassed"
    assert ScaleToZero(1) in passed.actions, "bake time and warm time end together"
    assert world.deployments[1].desired == 0 and world.status.bake is None


def test_the_scale_down_delay_keeps_the_previous_version_warm_after_the_bake() -> None:
    world = baking_world(bake="1m", delay="10m")
    world.run_until(lambda d: d.status.phase == "Succeeded")
    for _ in range(10):
        decision = world.step()
        assert ensured(decision, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    world.run_until(lambda d: ScaleToZero(1) in d.actions, max_steps=20)


def test_a_scale_down_delay_alone_keeps_the_previous_version_warm_without_judging() -> None:
    world = baking_world(bake="0s", delay="3m")
    assert world.status.phase == "Succeeded" and world.status.bake is not None
    assert world.status.bake.state == "Passed"
    before = len(world.requested)
    world.step()
    assert len(world.requested) == before
    world.run_until(lambda d: ScaleToZero(1) in d.actions, max_steps=20)


def test_a_failed_bake_check_moves_all_traffic_to_the_warm_version_in_the_same_pass() -> None:
    world = baking_world(bake="10m")
    world.step()
    warm = world.deployments[1]
    world.verdict, world.result_fields = "fail", SEQUENTIAL_FAIL
    decision = world.run_until(lambda d: d.status.phase == "RolledBack", max_steps=3)
    status = decision.status
    assert status.stable_version == 1 and status.rejected_version == 2
    routed = route(decision)
    assert (routed.stable_version, routed.candidate_version, routed.weight) == (1, 2, 0)
    assert ScaleToZero(2) in decision.actions
    assert ensured(decision, 1) == EnsureDeployment(1, "stable", FixedReplicas(3))
    assert world.deployments[1] == warm, "the warm version needed no new pod"
    last = status.history[-1]
    assert (last.outcome, last.reason, last.stage) == ("RolledBack", "BakeFailed", "bake")
    assert last.metrics and last.metrics[0].verdict == "fail"
    assert events(decision, "BakeFailed")
    drained = world.step()
    assert drained.status.bake is None and route(drained).candidate_version is None


def test_the_bake_compares_with_the_previous_versions_counts_from_the_last_judged_stage() -> None:
    pool = MetricPool(
        intervals=3,
        counted_until="2026-01-01T00:10:00Z",
        parts=[
            PooledPart(
                candidate=VersionCounts(numerator=5, denominator=500),
                stable=VersionCounts(numerator=4, denominator=480),
            )
        ],
    )
    body: dict[str, Any] = {
        "stages": STAGES,
        "analysis": {"interval": "30s", "minChecks": 1},
        "rollback": {"bakeTime": "5m"},
    }
    world = stable_world(make_spec(1, **body))
    world.result_fields = {"pool": pool}
    world.set_version(2)
    world.run_until(lambda d: d.status.phase == "Baking")
    assert world.status.bake is not None and world.status.bake.baseline_stage == "canary"
    seeded = {m.name: m.pool for m in world.status.analysis.metrics}
    assert set(seeded) == {"error-rate", "latency-p99"}
    part = seeded["error-rate"].parts[0]  # type: ignore[union-attr]
    assert part.stable == VersionCounts(numerator=4, denominator=480) and part.candidate == VersionCounts()
    first = next(r for r in _requests_after(world) if r.stage == "bake")
    assert first.previous[0].pool is not None and first.previous[0].pool.counted_until is None
    promoted = next(h for h in world.status.history if h.outcome == "Promoted" and h.version == 2)
    assert promoted.metrics is not None and {m.name for m in promoted.metrics} == {"error-rate", "latency-p99"}


def _requests_after(world: World) -> list[RunAnalysis]:
    world.result_fields = {}
    world.step()
    return world.requested


def test_abort_during_the_bake_rolls_back_and_promote_ends_it() -> None:
    world = baking_world()
    world.step()
    aborted = world.step(requests=(Request("abort"),))
    assert aborted.status.phase == "RolledBack" and aborted.status.stable_version == 1
    assert aborted.status.history[-1].outcome == "Aborted"
    other = baking_world()
    promoted = other.step(requests=(Request("promote"),))
    assert promoted.status.phase == "Succeeded" and promoted.status.history[-1].reason == "PromoteRequested"


def test_git_reverting_to_the_previous_version_during_the_bake_returns_to_it_at_once() -> None:
    world = baking_world()
    world.step()
    world.set_version(1)
    reverted = world.step()
    assert reverted.status.stable_version == 1 and reverted.status.phase == "Succeeded"
    assert route(reverted).stable_version == 1


def test_a_new_version_during_the_bake_ends_it_and_starts_its_rollout() -> None:
    world = baking_world()
    world.step()
    world.set_version(3)
    started = world.step()
    assert started.status.phase == "Progressing" and started.status.candidate_version == 3
    assert started.status.stable_version == 2 and started.status.bake is None
    assert "BakeInterrupted" in [h.outcome for h in started.status.history]


# --- webhooks ----------------------------------------------------------------------------------------------------

HOOK = {"url": "http://hooks.example/hook", "timeout": "1s", "retries": 0}


def test_pre_rollout_is_asked_before_any_traffic_and_its_failure_rolls_back() -> None:
    world = stable_world(make_spec(1, stages=STAGES, webhooks={"preRollout": HOOK}))
    world.set_version(2)
    for _ in range(4):
        decision = world.step()
        assert route(decision).weight == 0
    assert [p.hook for p in world.status.webhooks] == ["preRollout"]
    answer(world, "preRollout", ok=False, code=500)
    decision = world.step()
    assert decision.status.phase == "RolledBack"
    assert decision.status.history[-1].reason == "PreRolloutFailed"
    recorded = [h for h in decision.status.history if h.webhook is not None]
    assert recorded[-1].webhook is not None and recorded[-1].webhook.code == 500
    assert events(decision, "PreRolloutFailed")


def test_pre_rollout_answering_2xx_lets_traffic_flow() -> None:
    world = stable_world(make_spec(1, stages=STAGES, webhooks={"preRollout": HOOK}))
    world.set_version(2)
    world.step()
    world.step()
    answer(world, "preRollout", ok=True)
    world.step()
    decision = world.step()
    assert route(decision).weight == 50


def test_confirm_promotion_holds_before_full_until_it_answers_2xx() -> None:
    spec = make_spec(
        1, stages=STAGES, analysis={"interval": "30s", "minChecks": 1}, webhooks={"confirmPromotion": HOOK}
    )
    world = stable_world(spec)
    world.set_version(2)
    held = world.run_until(lambda d: d.status.phase == "AwaitingApproval")
    assert held.status.stage is not None and held.status.stage.name == "canary"
    for _ in range(3):
        answer(world, "confirmPromotion", ok=False, code=409)
        decision = world.step()
        assert decision.status.phase == "AwaitingApproval"
    refusals = [h for h in world.status.history if h.webhook is not None and not h.webhook.ok]
    assert len(refusals) == 1, "a refusal repeated is recorded once"
    world.step()
    answer(world, "confirmPromotion", ok=True)
    world.run_until(lambda d: d.status.stage is not None and d.status.stage.name == "full", max_steps=3)


def test_a_rollback_asks_for_on_rollback_and_post_rollout_without_waiting_for_them() -> None:
    hooks = {"onRollback": HOOK, "postRollout": HOOK}
    world = stable_world(make_spec(1, stages=STAGES, webhooks=hooks))
    world.set_version(2)
    world.verdict, world.result_fields = "fail", SEQUENTIAL_FAIL
    rolled = world.run_until(lambda d: d.status.phase == "RolledBack")
    assert sorted(p.hook for p in rolled.status.webhooks) == ["onRollback", "postRollout"]
    answer(world, "onRollback", ok=False, code=None)
    answer(world, "postRollout", ok=True)
    decision = world.step()
    assert decision.status.webhooks == []
    assert {h.reason for h in decision.status.history if h.webhook} == {"OnRollbackFailed", "PostRolloutAnswered"}


def test_an_answer_for_a_delivery_no_longer_pending_is_ignored() -> None:
    world = stable_world(make_spec(1, stages=STAGES, webhooks={"preRollout": HOOK}))
    world.set_version(2)
    world.step()
    world.step()
    stale = WebhookOutcome(hook="preRollout", url="http://hooks.example/hook", ok=False, code=500)
    world.answers.append(WebhookResult(2, "2000-01-01T00:00:00Z", stale))
    assert world.step().status.phase == "Progressing"


# --- lineage -----------------------------------------------------------------------------------------------------


def test_decisions_carry_the_versions_lineage_metadata() -> None:
    lineage = {"training-run": "run-42", "dataset": "digits@2026-01-01"}
    world = stable_world(make_spec(1, stages=STAGES))
    world.spec = world.spec.model_copy(
        update={"model": world.spec.model.model_copy(update={"version": 2, "metadata": lineage})}
    )
    world.generation += 1
    world.run_until(lambda d: d.status.stable_version == 2)
    entries = {h.outcome: h for h in world.status.history if h.version == 2}
    assert entries["Started"].metadata == lineage and entries["Promoted"].metadata == lineage
    assert entries["StageCompleted"].metadata is None


# --- properties --------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    verdicts=st.lists(st.sampled_from(["pass", "fail", "inconclusive"]), min_size=1, max_size=12),
    judge=st.sampled_from(["sequential", "threshold"]),
    steps=st.lists(st.integers(min_value=1, max_value=90), min_size=12, max_size=12),
)
def test_bake_invariants(verdicts: list[str], judge: str, steps: list[int]) -> None:
    """While a bake runs the previous version is at full capacity and serves nobody; a rollback starts no pod."""
    world = baking_world(bake="4m", delay="6m")
    violations: list[str] = []

    def watch(call: Call) -> None:
        status = call.decision.status
        bake = status.bake
        actions = call.decision.actions
        if bake is not None and bake.state in ("Baking", "Passed") and status.stable_version == bake.version:
            if ensured(call.decision, bake.previous_version) != EnsureDeployment(
                bake.previous_version, "stable", FixedReplicas(3)
            ):
                violations.append(f"v{bake.previous_version} not kept warm ({status.phase})")
            if ScaleToZero(bake.previous_version) in actions:
                violations.append("the warm version was scaled down during its bake")
        if call.before.phase == "Baking" and status.phase == "RolledBack":
            started = [a for a in actions if isinstance(a, EnsureDeployment) and a.version == status.stable_version]
            before = call.observations.deployment(status.stable_version)
            if before is None or any(
                isinstance(a.replicas, FixedReplicas) and a.replicas.count > before.ready for a in started
            ):
                violations.append("the rollback needed pods to start")
            if route(call.decision).stable_version != status.stable_version or route(call.decision).weight != 0:
                violations.append("the rollback did not move all traffic to the warm version")

    world.watchers.append(watch)
    for verdict, seconds in zip(verdicts + ["pass"] * 12, steps, strict=False):
        world.verdict = verdict  # type: ignore[assignment]
        world.result_fields = {"judge": judge}
        world.step(seconds)
    assert not violations, violations
    assert world.status.phase in ("Baking", "Succeeded", "RolledBack")
