"""Delivering lifecycle webhooks: an HTTP POST with a JSON body, a timeout, retries with back-off, in the background.

Why in the background: the engine asks for a delivery by writing it into
``status.webhooks`` (``engine.hooks``) and never waits; the reconcile pass
hands each pending delivery to ``WebhookRunner.collect``, which starts it
once as an asyncio task and returns the outcomes of the finished ones.  A
receiver that hangs costs its task the timeout times the attempts, and no
pass waits for it, so it never delays an analysis check or a rollback.
Pure asyncio (aiohttp), never a thread: the Prometheus queries run on the
default thread pool, which a hanging receiver must not fill.

Why an allow-list: the operator POSTs from inside the cluster, so a release
could otherwise make it call any address it can reach (SSRF), as with
Prometheus addresses.  A URL is called only when the operator's
``--allowed-webhook-address`` lists it (exact match after
``policy.normalize_address``); reconcile refuses a release naming another
before anything runs (``policy.webhook_violations``), and the runner checks
again before sending, so a refused URL is never contacted.

Delivery is at least once: a pending delivery lives in status, so an
operator restarted before the answer was recorded sends it again.

``post_json`` and ``post_with_retries`` (one attempt; attempts with
back-off) are shared with the notifications (``modelrelease.notify``),
which are fire-and-forget and never recorded in status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp

from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import ModelReleaseSpec, WebhookSpec
from modelrelease.api.status import ModelReleaseStatus, PendingWebhook, WebhookHook, WebhookOutcome
from modelrelease.engine.hooks import latest_metrics, webhook_body
from modelrelease.engine.observations import WebhookResult
from modelrelease.policy import PrometheusAllowList

log = logging.getLogger("modelrelease.webhooks")

BACKOFF_SECONDS = 1.0
"""Wait before the first retry; doubled before each next one."""
BACKOFF_MAX_SECONDS = 30.0
ANSWER_BYTES = 256
"""The first bytes of an answer kept in status.history: enough for a reason, small enough for status."""

Key = tuple[str, str, str, int, str]
Post = Callable[[str, bytes, float], Awaitable[tuple[int, str]]]
"""(url, body, timeout seconds) -> (HTTP status, the answer's first bytes); raises on no answer."""


def spec_of(spec: ModelReleaseSpec, hook: str) -> WebhookSpec | None:
    hooks = spec.webhooks
    return {
        "preRollout": hooks.pre_rollout,
        "confirmPromotion": hooks.confirm_promotion,
        "postRollout": hooks.post_rollout,
        "onRollback": hooks.on_rollback,
    }.get(hook)


async def post_json(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    """One attempt: POST ``body`` as JSON; the status and the answer's first bytes."""
    limits = aiohttp.ClientTimeout(total=timeout)
    headers = {"Content-Type": "application/json", "User-Agent": "modelrelease-operator"}
    async with (
        aiohttp.ClientSession(timeout=limits, trust_env=False) as session,
        session.post(url, data=body, headers=headers, allow_redirects=False) as response,
    ):
        answer = await response.content.read(ANSWER_BYTES)
        return response.status, answer.decode(errors="replace").strip()


@dataclass(frozen=True)
class Attempts:
    """What a POST retried with back-off came to: the last answer, or the last error."""

    ok: bool
    code: int | None
    attempts: int
    message: str


async def post_with_retries(
    url: str,
    data: bytes,
    timeout: float,
    retries: int,
    post: Post = post_json,
    backoff: float = BACKOFF_SECONDS,
    *,
    timeout_text: str = "",
) -> Attempts:
    """POST until a 2xx answer or ``retries`` more attempts are spent; never raises.

    A non-2xx answer is retried like no answer at all: a receiver that is
    restarting answers 502 for a moment.  The back-off doubles from
    ``backoff`` up to ``BACKOFF_MAX_SECONDS``.  Shared by the lifecycle
    webhooks and the notifications (``modelrelease.notify``).
    """
    code: int | None = None
    message = ""
    attempts = 0
    delay = backoff
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(delay)  # back-off between attempts, not a synchronisation
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        attempts += 1
        try:
            code, message = await post(url, data, timeout)
        except TimeoutError:
            code, message = None, f"no answer within {timeout_text or f'{timeout:g}s'}"
        except (aiohttp.ClientError, OSError, ValueError) as error:
            code, message = None, f"{type(error).__name__}: {error}"[:ANSWER_BYTES]
        if code is not None and 200 <= code < 300:
            return Attempts(ok=True, code=code, attempts=attempts, message=message)
    return Attempts(ok=False, code=code, attempts=attempts, message=message)


async def deliver(
    hook: WebhookHook,
    webhook: WebhookSpec,
    body: Mapping[str, object],
    post: Post = post_json,
    backoff: float = BACKOFF_SECONDS,
) -> WebhookOutcome:
    """Attempt until a 2xx answer or the retries are spent; never raises (the outcome says what happened).

    (confirmPromotion's "not yet" is a refusal the engine asks again about an
    interval later.)
    """
    url = str(webhook.url)
    timeout = parse_duration(webhook.timeout).total_seconds()
    data = json.dumps(body).encode()
    done = await post_with_retries(url, data, timeout, webhook.retries, post, backoff, timeout_text=webhook.timeout)
    return WebhookOutcome(hook=hook, url=url, ok=done.ok, code=done.code, attempts=done.attempts, message=done.message)


@dataclass
class WebhookRunner:
    """Each pending delivery started once, in the background; its outcome handed to the passes that ask."""

    allowed: PrometheusAllowList
    post: Post = post_json
    backoff: float = BACKOFF_SECONDS

    def __post_init__(self) -> None:
        self._tasks: dict[Key, asyncio.Task[WebhookOutcome]] = {}

    def collect(
        self, namespace: str, name: str, spec: ModelReleaseSpec, status: ModelReleaseStatus
    ) -> tuple[WebhookResult, ...]:
        """Start what ``status.webhooks`` asks for and is not running; return the outcomes of the finished ones.

        A finished task is kept until its delivery leaves ``status.webhooks``
        (the engine recorded it), so an outcome is never lost to a pass whose
        status write failed; a delivery no longer pending is forgotten (and
        cancelled if it still runs: its gate's candidate is gone).
        """
        pending = {(namespace, name, p.hook, p.version, p.since): p for p in status.webhooks}
        for key in [k for k in self._tasks if k[:2] == (namespace, name) and k not in pending]:
            self._tasks.pop(key).cancel()
        finished: list[WebhookResult] = []
        for key, delivery in pending.items():
            task = self._tasks.get(key)
            if task is None:
                self._tasks[key] = asyncio.create_task(
                    self._run(namespace, name, spec, status, delivery),
                    name=f"webhook {namespace}/{name} {delivery.hook}",
                )
            elif task.done() and not task.cancelled():
                finished.append(WebhookResult(delivery.version, delivery.since, task.result()))
        return tuple(finished)

    def running(self) -> int:
        return sum(not task.done() for task in self._tasks.values())

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _run(
        self, namespace: str, name: str, spec: ModelReleaseSpec, status: ModelReleaseStatus, delivery: PendingWebhook
    ) -> WebhookOutcome:
        webhook = spec_of(spec, delivery.hook)
        if webhook is None:
            return WebhookOutcome(
                hook=delivery.hook, url="", ok=False, attempts=0, message="the release no longer configures this hook"
            )
        if not self.allowed.allows(str(webhook.url)):
            refused = f"not sent: {webhook.url} is not an allowed webhook address (--allowed-webhook-address)"
            return WebhookOutcome(hook=delivery.hook, url=str(webhook.url), ok=False, attempts=0, message=refused)
        body = webhook_body(
            name,
            namespace,
            delivery,
            status.phase.value,
            status.stable_version,
            status.candidate_version,
            status.stage.name if status.stage else None,
            dict(spec.model.metadata) if delivery.version == spec.model.version else {},
            latest_metrics(status, delivery.version),
        )
        outcome = await deliver(delivery.hook, webhook, body, self.post, self.backoff)
        log.info(
            "%s webhook of %s/%s about v%s: %s (%s attempts)",
            delivery.hook,
            namespace,
            name,
            delivery.version,
            outcome.code if outcome.code is not None else outcome.message,
            outcome.attempts,
        )
        return outcome
