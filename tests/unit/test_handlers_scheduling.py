"""When a release runs: at its interval while a rollout is judged, never while idle, one pass at a time."""

from __future__ import annotations

import asyncio

from modelrelease.api import ModelReleaseSpec, ModelReleaseStatus, Phase, StageStatus
from modelrelease.reconcile import PassOutcome, next_pass_in
from modelrelease.scheduler import Scheduler


def _spec(interval: str = "30s") -> ModelReleaseSpec:
    return ModelReleaseSpec.model_validate(
        {
            "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
            "serving": {"image": "tensorflow/serving:2.18.0"},
            "analysis": {"interval": interval},
        }
    )


def test_idle_release_is_not_polled() -> None:
    for phase in (Phase.SUCCEEDED, Phase.ROLLED_BACK):
        status = ModelReleaseStatus(phase=phase, stable_version=1, observed_generation=1)
        assert next_pass_in(_spec(), status) is None


def test_judged_rollout_runs_at_the_analysis_interval() -> None:
    status = ModelReleaseStatus(
        phase=Phase.PROGRESSING,
        stable_version=1,
        candidate_version=2,
        candidate_ready_at="2026-01-01T00:00:00Z",
        stage=StageStatus(index=1, name="canary", weight=10),
        observed_generation=1,
    )
    assert next_pass_in(_spec("30s"), status) == 30


def test_starting_candidate_is_watched_more_often_than_a_long_interval() -> None:
    status = ModelReleaseStatus(phase=Phase.PROGRESSING, stable_version=1, candidate_version=2, observed_generation=1)
    waited = next_pass_in(_spec("5m"), status)
    assert waited is not None and waited <= 2


def test_handover_keeps_polling_until_the_old_version_is_retired() -> None:
    status = ModelReleaseStatus(phase=Phase.SUCCEEDED, stable_version=2, retiring_version=1, observed_generation=1)
    assert next_pass_in(_spec(), status) is not None


def test_wakes_during_a_pass_coalesce_into_one_more_pass() -> None:
    async def scenario() -> int:
        release = asyncio.Event()
        started = asyncio.Event()
        calls = 0

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()
            return PassOutcome(phase="Succeeded", next_in=None)

        scheduler = Scheduler(one_pass)
        scheduler.wake("ml", "digits")
        await started.wait()
        for _ in range(5):
            scheduler.wake("ml", "digits")
        release.set()
        while calls < 2:
            await asyncio.sleep(0)
        for _ in range(20):  # let any (wrong) third pass start
            await asyncio.sleep(0)
        await scheduler.close()
        return calls

    assert asyncio.run(scenario()) == 2


def test_replica_without_the_lease_runs_no_pass() -> None:
    async def scenario() -> int:
        calls = 0

        async def one_pass(namespace: str, name: str) -> PassOutcome:
            nonlocal calls
            calls += 1
            return PassOutcome(phase=None, next_in=None)

        scheduler = Scheduler(one_pass, may_act=lambda: False)
        scheduler.wake("ml", "digits")
        for _ in range(20):
            await asyncio.sleep(0)
        await scheduler.close()
        return calls

    assert asyncio.run(scenario()) == 0


def test_a_bake_and_a_pending_webhook_keep_the_release_polled() -> None:
    from modelrelease.api.status import BakeStatus, PendingWebhook

    stamp = "2026-01-01T00:00:00Z"
    bake = BakeStatus(version=2, previous_version=1, started_at=stamp, ends_at=stamp, scale_down_at=stamp)
    baking = ModelReleaseStatus(phase=Phase.BAKING, stable_version=2, bake=bake, observed_generation=1)
    assert next_pass_in(_spec("30s"), baking) == 30
    warm = baking.model_copy(update={"phase": Phase.SUCCEEDED, "bake": bake.model_copy(update={"state": "Passed"})})
    assert next_pass_in(_spec("30s"), warm) == 30
    delivering = ModelReleaseStatus(
        phase=Phase.ROLLED_BACK,
        stable_version=1,
        observed_generation=1,
        webhooks=[PendingWebhook(hook="onRollback", version=2, since=stamp)],
    )
    waited = next_pass_in(_spec("5m"), delivering)
    assert waited is not None and waited <= 2
