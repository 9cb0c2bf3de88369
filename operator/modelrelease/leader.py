"""Leader election with a ``coordination.k8s.io`` Lease, so two replicas never act on one release.

Why a Lease and not kopf peering: peering needs its own CRD and an extra
object per operator; a Lease is built into Kubernetes and is what
kube-controller-manager itself uses.  Every write to the Lease carries the
resourceVersion that was read, so two candidates racing for an expired
Lease cannot both win.

Why expiry is judged on this replica's own clock (as client-go does): the
holder stamps ``renewTime`` with *its* wall clock, so comparing it with ours
lets a skewed clock make two replicas lead at once.  A challenger instead
remembers the record (resourceVersion, holder, renewTime) and the moment, on
its own monotonic clock, it last saw that record change; the Lease is expired
only once it has seen no change for the holder's ``leaseDurationSeconds``.  A
challenger that just started has seen no change yet, so it waits a whole
duration.  A Lease with no holder (released on shutdown) is taken at once.

Safety margin: a leader's validity runs for ``lease_duration -
renew_period`` from the monotonic time taken *before* its last successful
renewal was sent, so a slow request shortens the validity and never extends
it.  A challenger can only see that renewal after it was written, hence after
the validity began, and waits a full ``lease_duration`` from then: the leader
stops ``renew_period`` before anybody else may start, a margin for clocks
ticking at slightly different rates and for a write already in flight.  ``validity_left()``
bounds a pass (``scheduler``) and ``is_leader()`` fences every write
(``kube.fencing``), so a replica stops writing once it knows it lost.

Why no error ends the elector: an unreachable API server, a timeout or a
refused request is logged, counted (``modelrelease_lease_errors_total``) and
retried with a growing back-off, while leadership lapses on its own when the
validity runs out.  Anything else is a bug: it ends the task, and the runner
makes ``/healthz`` fail so the pod is restarted.

The holder's identity is the pod name in a cluster, so a restarted
container of the same pod takes its Lease straight back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease.metrics import LEADER, LEASE_ERRORS

log = logging.getLogger("modelrelease.leader")

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ApiException, aiohttp.ClientError, TimeoutError, OSError)
"""What an attempt on the Lease may fail with and be retried: the API server's refusals, network errors, timeouts."""
FIRST_RETRY = 0.5
"""Seconds before the first retry after a failed attempt; doubled per failure in a row, up to ``renew_period``."""


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_period: float = 5.0
    retry_period: float = 2.0
    """How often a replica that does not lead looks at the Lease (at most ``renew_period``)."""

    def __post_init__(self) -> None:
        if not 0 < self.renew_period < self.lease_duration:
            raise ValueError(
                f"renew_period ({self.renew_period} s) must be above 0 and below lease_duration ({self.lease_duration} s)"
            )

    @property
    def validity(self) -> float:
        """Seconds a leader acts after it started its last successful renewal."""
        return self.lease_duration - self.renew_period


@dataclass
class LeaseObservation:
    """The Lease record as this replica last saw it change, and when, on this replica's monotonic clock."""

    record: Hashable | None = None
    changed_at: float = math.inf
    """Set by the first ``see``; until then nothing has been unchanged for any time at all."""

    def see(self, record: Hashable, now: float) -> None:
        if record != self.record:
            self.record, self.changed_at = record, now

    def unchanged_for(self, now: float) -> float:
        return now - self.changed_at


def lease_record(lease: Any) -> Hashable:
    """What changes on every write of the Lease, whoever makes it."""
    spec = lease.spec or client.V1LeaseSpec()
    return (lease.metadata.resource_version, spec.holder_identity, spec.renew_time)


def next_attempt_in(config: LeaseConfig, leader: bool, failures: int) -> float:
    """Seconds until the next attempt: back off after failures, renew on schedule, else look now and then."""
    if failures:
        return float(min(config.renew_period, FIRST_RETRY * 2 ** (failures - 1)))
    return config.renew_period if leader else min(config.retry_period, config.renew_period)


def describe_error(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"API server answered {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class LeaderElector:
    """Holds (or waits for) the Lease; ``is_leader()`` is what the scheduler and every write ask."""

    def __init__(
        self,
        api_client: client.ApiClient,
        config: LeaseConfig,
        on_elected: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = client.CoordinationV1Api(api_client)
        self.config = config
        self._on_elected = on_elected
        self._monotonic = monotonic
        self._valid_until = -math.inf
        self._observed = LeaseObservation()
        self._acting = False  # what the last attempt found, for the log
        self.failures = 0
        """Attempts failed in a row (0 after a successful one)."""

    def is_leader(self) -> bool:
        return self._monotonic() < self._valid_until

    def validity_left(self) -> float:
        """Seconds this replica may still act without another successful renewal (0 when it does not lead)."""
        return max(0.0, self._valid_until - self._monotonic())

    def describe(self) -> str:
        """Who leads, as this replica knows it: for ``/healthz``'s body and people reading it."""
        if self.is_leader():
            return f"leader ({self.config.identity})"
        holder = self._observed.record[1] if isinstance(self._observed.record, tuple) else None
        return f"standby ({self.config.identity}); {holder or 'nobody'} holds lease {self.config.namespace}/{self.config.name}"

    async def run(self) -> None:
        """Try to acquire or renew forever; cancel to stop (the Lease is then released)."""
        try:
            while True:
                leader = await self.attempt()
                await asyncio.sleep(next_attempt_in(self.config, leader, self.failures))
        finally:
            await asyncio.shield(self._release())

    async def attempt(self) -> bool:
        """One try at acquiring or renewing the Lease; whether this replica leads now.  I/O errors are not raised."""
        was_leader = self.is_leader()
        started = self._monotonic()
        try:
            # An attempt that takes longer than the validity it could give is abandoned (a hung connection).
            async with asyncio.timeout(self.config.validity):
                holds = await self._acquire_or_renew()
        except TRANSIENT_ERRORS as error:
            self.failures += 1
            LEASE_ERRORS.inc()
            left = self.validity_left()
            log.warning(
                "lease %s/%s: %s (%d failed attempts in a row; %s)",
                self.config.namespace,
                self.config.name,
                describe_error(error),
                self.failures,
                f"leading for {left:.1f} s more unless renewed" if left else "not leading",
            )
        else:
            self.failures = 0
            # Validity counts from before the request: time the request took is taken off it, never added.
            # Someone else holding the Lease (or writing it under us) means it is lost now, not when validity ends.
            self._valid_until = started + self.config.validity if holds else -math.inf
        leader = self.is_leader()
        LEADER.set(1 if leader else 0)
        if self._acting and not (was_leader and leader):  # lost now, or the validity ran out since the last attempt
            log.warning("lost lease %s/%s: stopped acting", self.config.namespace, self.config.name)
        if leader and not was_leader:
            log.info("acquired lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity)
            self._on_elected()
        self._acting = leader
        return leader

    async def _acquire_or_renew(self) -> bool:
        config = self.config
        now = datetime.now(UTC)  # renewTime is for people and tools to read; no replica's expiry depends on it
        try:
            lease = await self._api.read_namespaced_lease(config.name, config.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=config.name, namespace=config.namespace),
                spec=self._spec(now, acquire=now, transitions=0),
            )
            try:
                created = await self._api.create_namespaced_lease(config.namespace, body)
            except ApiException as conflict:
                if conflict.status == 409:
                    return False
                raise
            self._observed.see(lease_record(created), self._monotonic())
            return True
        self._observed.see(lease_record(lease), self._monotonic())  # after the read returned: the later, the safer
        spec: Any = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity
        duration = float(spec.lease_duration_seconds or config.lease_duration)
        if holder == config.identity:
            lease.spec = self._spec(now, acquire=spec.acquire_time or now, transitions=spec.lease_transitions or 0)
        elif holder and self._observed.unchanged_for(self._monotonic()) < duration:
            return False
        else:
            if holder:
                log.info(
                    "lease %s/%s: %s has not renewed for %.0f s; taking over",
                    config.namespace,
                    config.name,
                    holder,
                    duration,
                )
            lease.spec = self._spec(now, acquire=now, transitions=(spec.lease_transitions or 0) + 1)
        try:
            written = await self._api.replace_namespaced_lease(config.name, config.namespace, lease)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        self._observed.see(lease_record(written), self._monotonic())
        return True

    def _spec(self, now: datetime, acquire: datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.config.identity,
            # Rounded up: a challenger waits at least as long as this replica believes it may lead.
            lease_duration_seconds=math.ceil(self.config.lease_duration),
            acquire_time=acquire,
            renew_time=now,
            lease_transitions=transitions,
        )

    async def _release(self) -> None:
        """On a clean shutdown, hand the Lease over at once instead of making the next leader wait."""
        if not self.is_leader():
            return
        self._valid_until = -math.inf
        LEADER.set(0)
        try:
            async with asyncio.timeout(self.config.validity):
                lease = await self._api.read_namespaced_lease(self.config.name, self.config.namespace)
                if lease.spec is not None and lease.spec.holder_identity == self.config.identity:
                    released: Any = None  # the client's models type these fields without None
                    lease.spec.holder_identity = released
                    lease.spec.renew_time = released
                    await self._api.replace_namespaced_lease(self.config.name, self.config.namespace, lease)
        except TRANSIENT_ERRORS as error:
            log.warning("could not release lease: %s", describe_error(error))
