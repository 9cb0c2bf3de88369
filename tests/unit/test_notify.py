"""Notifications: what a pass tells (from the engine's own transitions), the two body formats, and delivery
in the background with retries and back-off that no pass waits for."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from test_engine_support import World, make_spec, stable_world

from modelrelease import webhooks
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.api.status import ModelReleaseStatus
from modelrelease.engine import Request
from modelrelease.metrics import REGISTRY
from modelrelease.notify import Notice, Notifier, Target, generic_body, notices, parse_target, slack_body
from modelrelease.policy import PrometheusAllowList, ReleasePolicy
from modelrelease.webhooks import BACKOFF_MAX_SECONDS, post_with_retries

STAGES = [
    {"name": "canary", "weight": 20, "duration": "2m"},
    {"name": "ab", "weight": 50, "minChecks": 1, "approval": True},
    {"name": "full", "weight": 100},
]


def _rollout(world: World, approve: bool = True, max_steps: int = 60) -> list[Notice]:
    """Step the simulated world (the engine plays every pass) and collect each pass's notices, in order."""
    told: list[Notice] = []
    for _ in range(max_steps):
        before = world.status
        waiting = before.phase == "AwaitingApproval" and before.stage is not None
        requests = (Request("approve", before.stage.name),) if waiting and approve and before.stage else ()
        decision = world.step(requests=requests)
        told += notices(world.spec, before, decision.status, "2026-01-01T00:00:00Z")
        if decision.status.phase in ("Succeeded", "RolledBack", "Failed"):
            break
    return told


def _summary(told: list[Notice]) -> list[tuple[str, int, str | None, str | None]]:
    return [(n.kind, n.version, n.from_stage, n.to_stage) for n in told]


def test_a_rollout_tells_its_start_each_stage_change_the_approval_wait_and_the_promotion_in_order() -> None:
    world = stable_world(make_spec(1, stages=STAGES))
    world.set_version(2)
    told = _rollout(world)
    assert _summary(told) == [
        ("RolloutStarted", 2, None, "canary"),
        ("StageChanged", 2, "canary", "ab"),
        ("AwaitingApproval", 2, "ab", "ab"),
        ("StageChanged", 2, "ab", "full"),
        ("Promoted", 2, None, None),
    ]
    assert told[-1].stable_version == 2 and told[-1].phase == "Succeeded"
    assert told[2].reason == "AwaitingApproval" and "modelrelease.io/approve: ab" in told[2].message


def test_a_wait_for_approval_is_told_once_however_many_passes_it_lasts() -> None:
    world = stable_world(make_spec(1, stages=STAGES))
    world.set_version(2)
    told = _rollout(world, approve=False, max_steps=30)
    assert world.status.phase == "AwaitingApproval"
    assert [n.kind for n in told].count("AwaitingApproval") == 1


def test_a_rollback_is_told_with_its_stage_and_reason() -> None:
    world = stable_world(make_spec(1, stages=STAGES, analysis={"interval": "30s", "failureLimit": 2}))
    world.set_version(2)
    world.verdict = "fail"
    told = _rollout(world)
    assert [n.kind for n in told] == ["RolloutStarted", "RolledBack"]
    rolled_back = told[-1]
    assert (rolled_back.from_stage, rolled_back.reason, rolled_back.stable_version) == ("canary", "AnalysisFailed", 1)
    assert rolled_back.phase == "RolledBack" and rolled_back.candidate_version is None


def test_a_failure_without_automatic_rollback_is_told_as_failed() -> None:
    spec = make_spec(1, stages=STAGES, analysis={"interval": "30s", "failureLimit": 1}, rollback={"automatic": False})
    world = stable_world(spec)
    world.set_version(2)
    world.verdict = "fail"
    told = _rollout(world)
    assert [n.kind for n in told] == ["RolloutStarted", "Failed"]
    assert told[-1].from_stage == "canary"


def test_an_unchanged_status_tells_nothing() -> None:
    world = stable_world(make_spec(1, stages=STAGES))
    assert notices(world.spec, world.status, world.status) == ()


NOTICE = Notice(
    kind="StageChanged",
    version=2,
    phase="Progressing",
    stable_version=1,
    candidate_version=2,
    from_stage="canary",
    to_stage="full",
    reason="StagePassed",
    message="stage canary passed (3 passing checks) <ok> & on",
    at="2026-01-01T00:01:00Z",
)


def test_the_generic_body_carries_every_fact_under_a_stable_name() -> None:
    assert generic_body("ml", "digits", NOTICE) == {
        "kind": "ModelReleaseNotification",
        "release": "digits",
        "namespace": "ml",
        "event": "StageChanged",
        "version": 2,
        "fromStage": "canary",
        "toStage": "full",
        "stableVersion": 1,
        "candidateVersion": 2,
        "phase": "Progressing",
        "reason": "StagePassed",
        "message": "stage canary passed (3 passing checks) <ok> & on",
        "time": "2026-01-01T00:01:00Z",
    }


def test_the_slack_body_is_an_incoming_webhook_message_with_escaped_text() -> None:
    body = slack_body("ml", "digits", NOTICE)
    assert set(body) == {"text", "blocks"}
    assert body["text"] == (
        ":arrow_forward: ml/digits v2: stage canary passed, entering full\n"
        "stage canary passed (3 passing checks) &lt;ok&gt; &amp; on"
    )
    section, context = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert context["type"] == "context"
    assert (
        context["elements"][0]["text"]
        == "*phase* Progressing · *reason* StagePassed · *stable* v1 · 2026-01-01T00:01:00Z"
    )
    json.dumps(body)  # what is posted


def test_the_slack_headline_of_a_rollback_names_the_stage() -> None:
    notice = Notice("RolledBack", 3, "RolledBack", 2, None, from_stage="ab", reason="AnalysisFailed")
    assert slack_body("ml", "digits", notice)["text"] == ":rewind: ml/digits v3: rolled back at stage ab"


def test_the_flag_names_a_url_with_an_optional_format() -> None:
    assert parse_target("http://h/x") == Target("http://h/x", "generic")
    assert parse_target("slack=https://hooks.slack.com/services/T/B/X") == Target(
        "https://hooks.slack.com/services/T/B/X", "slack"
    )
    assert parse_target("http://h/x?a=b") == Target("http://h/x?a=b", "generic")
    with pytest.raises(ValueError, match="FORMAT=URL"):
        parse_target("teams=http://h/x")


def test_back_off_doubles_between_attempts_up_to_its_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(webhooks.asyncio, "sleep", sleep)
    attempts = 0

    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        nonlocal attempts
        attempts += 1
        if attempts < 8:
            raise ConnectionRefusedError("down")
        return 200, "ok"

    done = asyncio.run(post_with_retries("http://h/x", b"{}", 1.0, 10, post, backoff=1.0))
    assert (done.ok, done.code, done.attempts) == (True, 200, 8)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX_SECONDS, BACKOFF_MAX_SECONDS]


def test_spent_retries_keep_the_last_error() -> None:
    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        raise ConnectionRefusedError("connection refused")

    done = asyncio.run(post_with_retries("http://h/x", b"{}", 1.0, 2, post, backoff=0.0))
    assert (done.ok, done.code, done.attempts) == (False, None, 3)
    assert "connection refused" in done.message


def _release(*notifications: dict[str, Any]) -> ModelReleaseSpec:
    return make_spec(2, stages=STAGES, notifications=list(notifications))


def _promotion() -> tuple[ModelReleaseStatus, ModelReleaseStatus]:
    """Two passes' worth of transitions: started, then promoted after all stages (one status pair each)."""
    world = stable_world(make_spec(1, stages=STAGES))
    world.set_version(2)
    before = world.status
    world.step()
    return before, world.status


def _sent_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("modelrelease_notifications_total", {"outcome": outcome}) or 0.0


def test_notices_reach_each_receiver_in_order_with_its_format_and_events() -> None:
    got: list[tuple[str, dict[str, Any]]] = []

    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        got.append((url, json.loads(body)))
        return 200, ""

    spec = _release(
        {"url": "http://h/slack", "format": "slack"},
        {"url": "http://h/only-rollbacks", "events": ["RolledBack"]},
        {"url": "http://h/refused"},
    )
    allowed = PrometheusAllowList.of(None, ["http://h/slack", "http://h/only-rollbacks"])
    world = stable_world(make_spec(1, stages=STAGES))
    world.set_version(2)

    async def run() -> int:
        notifier = Notifier([Target("http://h/all")], allowed, post=post, backoff=0.0)
        queued = 0
        for _ in range(60):
            before = world.status
            waiting = before.phase == "AwaitingApproval" and before.stage is not None
            approve = (Request("approve", before.stage.name),) if waiting and before.stage else ()
            decision = world.step(requests=approve)
            queued += notifier.publish("ml", "digits", spec, before, decision.status, "t")
            if decision.status.phase == "Succeeded":
                break
        await notifier.drain()
        await notifier.close()
        return queued

    assert asyncio.run(run()) == 10
    events = [body["event"] for url, body in got if url == "http://h/all"]
    assert events == ["RolloutStarted", "StageChanged", "AwaitingApproval", "StageChanged", "Promoted"]
    slack = [body for url, body in got if url == "http://h/slack"]
    assert [set(body) for body in slack] == [{"text", "blocks"}] * 5
    assert slack[-1]["text"].startswith(":white_check_mark: ml/digits v2: promoted to stable")
    assert not [url for url, _ in got if url in ("http://h/only-rollbacks", "http://h/refused")]


def test_a_receiver_that_never_answers_holds_no_pass_and_its_queue_stays_bounded() -> None:
    async def run() -> tuple[int, int]:
        hanging = asyncio.Event()

        async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
            hanging.set()
            await asyncio.Event().wait()  # never answers
            return 200, ""

        notifier = Notifier([Target("http://h/down")], post=post, backoff=0.0, queue_size=3)
        before, after = _promotion()
        spec = make_spec(2, stages=STAGES)
        dropped = _sent_count("dropped")
        for _ in range(6):  # publish is a plain function: it cannot wait for the receiver
            assert notifier.publish("ml", "digits", spec, before, after, "t") == 1
        await asyncio.wait_for(hanging.wait(), 5)  # the first is being posted and hangs; five wait
        for _ in range(2):
            notifier.publish("ml", "digits", spec, before, after, "t")
        queued = notifier.queued()
        await notifier.close()
        return queued, int(_sent_count("dropped") - dropped)

    queued, dropped = asyncio.run(run())
    assert queued == 3, "the queue holds at most queue_size notices"
    assert dropped == 4, "8 published: one in flight, three queued, four oldest dropped"


def test_a_release_naming_a_receiver_the_operator_does_not_allow_is_refused() -> None:
    policy = ReleasePolicy(webhooks=PrometheusAllowList.of(None, ["http://h/ok"]))
    assert policy.refusal(_release({"url": "http://h/ok"})) is None
    refusal = policy.refusal(_release({"url": "http://h/ok"}, {"url": "http://evil/x"}))
    assert refusal is not None and refusal.reason == "WebhookNotAllowed"
    assert "spec.notifications[1].url" in refusal.message
