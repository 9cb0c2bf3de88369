"""Webhook delivery: retries with back-off, timeouts, the allow-list, and a runner no pass ever waits on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from modelrelease.api.spec import ModelReleaseSpec, WebhookSpec
from modelrelease.api.status import ModelReleaseStatus, PendingWebhook
from modelrelease.policy import PrometheusAllowList, ReleasePolicy
from modelrelease.webhooks import WebhookRunner, deliver


def hook(**fields: Any) -> WebhookSpec:
    return WebhookSpec.model_validate({"url": "http://127.0.0.1:1/hook", "timeout": "1s", "retries": 2, **fields})


def test_a_failing_receiver_is_retried_and_the_last_answer_kept() -> None:
    answers = iter([(503, "restarting"), (500, "boom"), (502, "still")])
    sent: list[tuple[str, bytes, float]] = []

    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        sent.append((url, body, timeout))
        return next(answers)

    outcome = asyncio.run(deliver("onRollback", hook(), {"version": 2}, post, backoff=0.0))
    assert (outcome.ok, outcome.code, outcome.attempts, outcome.message) == (False, 502, 3, "still")
    assert [json.loads(body) for _, body, _ in sent] == [{"version": 2}] * 3
    assert sent[0][2] == 1.0


def test_a_2xx_answer_stops_the_retries() -> None:
    answers = iter([(500, ""), (204, "")])

    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        return next(answers)

    outcome = asyncio.run(deliver("preRollout", hook(), {}, post, backoff=0.0))
    assert (outcome.ok, outcome.code, outcome.attempts) == (True, 204, 2)


def test_no_answer_is_a_failure_with_the_reason() -> None:
    async def post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
        raise TimeoutError

    outcome = asyncio.run(deliver("postRollout", hook(retries=0), {}, post, backoff=0.0))
    assert (outcome.ok, outcome.code, outcome.attempts) == (False, None, 1)
    assert outcome.message == "no answer within 1s"


def _spec(url: str) -> ModelReleaseSpec:
    return ModelReleaseSpec.model_validate(
        {
            "model": {"name": "digits", "basePath": "/models/digits", "version": 2, "metadata": {"run": "r1"}},
            "serving": {"image": "tensorflow/serving:2.18.0"},
            "webhooks": {"onRollback": {"url": url, "timeout": "300ms", "retries": 0}},
        }
    )


def test_the_runner_never_waits_for_a_hanging_receiver_and_hands_over_a_real_answer() -> None:
    async def scenario() -> tuple[float, list[Any], Any]:
        release = asyncio.Event()
        bodies: list[Any] = []

        async def hang(request: web.Request) -> web.Response:
            await release.wait()
            return web.Response(status=200)

        async def answer(request: web.Request) -> web.Response:
            bodies.append(await request.json())
            return web.Response(status=202, text="paged")

        app = web.Application()
        app.router.add_post("/hang", hang)
        app.router.add_post("/page", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        allowed = PrometheusAllowList.of(None, [f"{base}/hang", f"{base}/page"])
        hooks = WebhookRunner(allowed, backoff=0.0)
        status = ModelReleaseStatus(webhooks=[PendingWebhook(hook="onRollback", version=2, since="t1")])
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert hooks.collect("ns", "r", _spec(f"{base}/hang"), status) == ()
        returned = loop.time() - started
        while hooks.running():
            await asyncio.sleep(0.05)  # polling the task in a test of the task itself
        [hung] = hooks.collect("ns", "r", _spec(f"{base}/hang"), status)
        paged_status = ModelReleaseStatus(webhooks=[PendingWebhook(hook="onRollback", version=2, since="t2")])
        hooks.collect("ns", "r", _spec(f"{base}/page"), paged_status)
        while hooks.running():
            await asyncio.sleep(0.05)
        [paged] = hooks.collect("ns", "r", _spec(f"{base}/page"), paged_status)
        release.set()
        await hooks.close()
        await runner.cleanup()
        return returned, [hung, paged], bodies

    returned, (hung, paged), bodies = asyncio.run(scenario())
    assert returned < 0.1, "collect waited for the receiver"
    assert not hung.outcome.ok and "no answer within 300ms" in hung.outcome.message
    assert paged.outcome.ok and (paged.outcome.code, paged.outcome.message) == (202, "paged")
    assert bodies[0]["hook"] == "onRollback" and bodies[0]["version"] == 2
    assert bodies[0]["metadata"] == {"run": "r1"} and bodies[0]["release"] == {"namespace": "ns", "name": "r"}


def test_an_address_not_allowed_is_refused_by_policy_and_never_contacted() -> None:
    spec = _spec("http://10.0.0.1/page")
    policy = ReleasePolicy(webhooks=PrometheusAllowList.of(None, ["http://pager.example/page"]))
    refusal = policy.refusal(spec)
    assert refusal is not None and refusal.reason == "WebhookNotAllowed"
    assert "spec.webhooks.onRollback.url" in refusal.message

    async def scenario() -> Any:
        hooks = WebhookRunner(policy.webhooks, backoff=0.0)
        status = ModelReleaseStatus(webhooks=[PendingWebhook(hook="onRollback", version=2, since="t")])
        hooks.collect("ns", "r", spec, status)
        while hooks.running():
            await asyncio.sleep(0.01)
        [result] = hooks.collect("ns", "r", spec, status)
        return result.outcome

    outcome = asyncio.run(scenario())
    assert not outcome.ok and outcome.attempts == 0 and "not an allowed webhook address" in outcome.message
