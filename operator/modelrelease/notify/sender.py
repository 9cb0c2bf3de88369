"""Delivering notifications in the background: one bounded queue and one task per receiver.

Why never awaited by a pass: a notification is news, not a gate.  A pass
formats the bodies and puts them on the receiver's queue without waiting
(``Notifier.publish`` is a plain function); the receiver's task posts them
one after the other, so a receiver hears of a rollout in the order the
engine decided it, and retries a failure with back-off
(``webhooks.post_with_retries``, shared with the lifecycle webhooks).  A
receiver that is down or hangs costs only its own task time; its queue is
bounded, and when full the oldest notice is dropped (counted in
``modelrelease_notifications_total{outcome="dropped"}``): the latest news
matters most, and the operator's memory stays bounded.

Delivery is at most once: notifications live in memory only, so an
operator that restarts, or loses its Lease, with notices queued drops them.
The release's status and events keep the full story.

Why the allow-list again: a per-release receiver is a URL the release's
author chose, so it must be listed by ``--allowed-webhook-address`` (policy
refuses such a release before anything runs; this checks again before
sending).  Operator-wide receivers are the operator admin's own flags.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import Counter

from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import ModelReleaseSpec, NotificationEvent, NotificationFormat, NotificationSpec
from modelrelease.api.status import ModelReleaseStatus
from modelrelease.metrics import REGISTRY
from modelrelease.notify.events import Notice, notices
from modelrelease.notify.formats import body_of
from modelrelease.policy import PrometheusAllowList
from modelrelease.webhooks import BACKOFF_SECONDS, Post, post_json, post_with_retries

log = logging.getLogger("modelrelease.notify")

QUEUE_SIZE = 100
"""Notices waiting per receiver; beyond it the oldest is dropped."""

NOTIFICATIONS = Counter(
    "modelrelease_notifications_total",
    "Notifications by outcome: sent (a 2xx answer), failed (retries spent), dropped (the receiver's queue was full).",
    ["outcome"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Target:
    """One receiver: where, in which body format, which events (empty: all), and how patiently."""

    url: str
    format: NotificationFormat = "generic"
    events: frozenset[str] = frozenset()
    timeout: float = 5.0
    retries: int = 3

    def wants(self, notice: Notice) -> bool:
        return not self.events or notice.kind in self.events

    @classmethod
    def of(cls, spec: NotificationSpec) -> Target:
        return cls(
            url=str(spec.url),
            format=spec.format,
            events=frozenset(spec.events),
            timeout=parse_duration(spec.timeout).total_seconds(),
            retries=spec.retries,
        )


def parse_target(text: str) -> Target:
    """``--notify-webhook`` syntax: ``URL`` (generic body) or ``FORMAT=URL`` with FORMAT ``generic`` or ``slack``."""
    head, sep, tail = text.partition("=")
    formats: tuple[str, ...] = get_args(NotificationFormat)
    if sep and head in formats:
        fmt: NotificationFormat = "slack" if head == "slack" else "generic"
        url = tail
    else:
        fmt, url = "generic", text
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{text!r}: expected URL or FORMAT=URL with FORMAT one of {', '.join(formats)}")
    return Target(url=url, format=fmt)


EVENTS: frozenset[str] = frozenset(get_args(NotificationEvent))


@dataclass
class _Item:
    data: bytes
    target: Target
    what: str


@dataclass
class _Channel:
    queue: asyncio.Queue[_Item]
    task: asyncio.Task[None]


@dataclass
class Notifier:
    """Turns a pass's transitions into queued posts; one background task per receiver URL delivers them."""

    targets: Sequence[Target] = ()
    allowed: PrometheusAllowList = field(default_factory=PrometheusAllowList)
    post: Post = post_json
    backoff: float = BACKOFF_SECONDS
    queue_size: int = QUEUE_SIZE

    def __post_init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def publish(
        self,
        namespace: str,
        name: str,
        spec: ModelReleaseSpec,
        before: ModelReleaseStatus,
        after: ModelReleaseStatus,
        at: str | None = None,
    ) -> int:
        """Queue the notices of the pass that wrote ``after`` over ``before``; never waits. Returns how many."""
        found = notices(spec, before, after, at)
        if not found:
            return 0
        targets = [*self.targets, *self._release_targets(namespace, name, spec)]
        queued = 0
        for notice in found:
            for target in targets:
                if target.wants(notice):
                    body = body_of(target.format, namespace, name, notice)
                    what = f"{notice.kind} of {namespace}/{name} v{notice.version}"
                    self._enqueue(_Item(json.dumps(body).encode(), target, what))
                    queued += 1
        return queued

    def _release_targets(self, namespace: str, name: str, spec: ModelReleaseSpec) -> list[Target]:
        allowed = []
        for wanted in spec.notifications:
            if self.allowed.allows(str(wanted.url)):
                allowed.append(Target.of(wanted))
            else:
                log.warning("not notifying %s for %s/%s: not an --allowed-webhook-address", wanted.url, namespace, name)
        return allowed

    def _enqueue(self, item: _Item) -> None:
        channel = self._channels.get(item.target.url)
        if channel is None or channel.task.done():
            queue: asyncio.Queue[_Item] = asyncio.Queue(self.queue_size)
            task = asyncio.create_task(self._deliver(queue), name=f"notify {item.target.url}")
            channel = self._channels[item.target.url] = _Channel(queue, task)
        if channel.queue.full():
            dropped = channel.queue.get_nowait()
            channel.queue.task_done()
            NOTIFICATIONS.labels(outcome="dropped").inc()
            log.warning("notification queue of %s full: dropped %s", item.target.url, dropped.what)
        channel.queue.put_nowait(item)

    async def _deliver(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            try:
                target = item.target
                done = await post_with_retries(
                    target.url, item.data, target.timeout, target.retries, self.post, self.backoff
                )
                NOTIFICATIONS.labels(outcome="sent" if done.ok else "failed").inc()
                if done.ok:
                    log.debug("notified %s: %s", target.url, item.what)
                else:
                    log.warning(
                        "could not notify %s of %s after %d attempts: %s",
                        target.url,
                        item.what,
                        done.attempts,
                        done.code if done.code is not None else done.message,
                    )
            finally:
                queue.task_done()

    def queued(self) -> int:
        """Notices not yet delivered (or given up on), over all receivers."""
        return sum(channel.queue.qsize() for channel in self._channels.values())

    async def drain(self) -> None:
        """Until every queued notice is delivered or given up on (tests; a clean stop could use it)."""
        await asyncio.gather(*(channel.queue.join() for channel in self._channels.values()))

    async def close(self) -> None:
        tasks = [channel.task for channel in self._channels.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._channels.clear()
