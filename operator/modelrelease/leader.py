"""Leader election with a ``coordination.k8s.io`` Lease, so two replicas never act on one release.

Why a Lease and not kopf peering: peering needs its own CRD and an extra
object per operator; a Lease is built into Kubernetes and is what
kube-controller-manager itself uses.  Every write to the Lease carries the
resourceVersion that was read, so two candidates racing for an expired
Lease cannot both win.

Safety margin: a leader that cannot renew stops acting after
``lease_duration - renew_period`` (before anybody else may take over), and a
challenger takes over only after a full ``lease_duration`` without renewal.
The holder's identity is the pod name in a cluster, so a restarted
container of the same pod takes its Lease straight back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease.metrics import LEADER

log = logging.getLogger("modelrelease.leader")


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_period: float = 5.0


def lease_expired(renew_time: datetime | None, duration_seconds: float, now: datetime) -> bool:
    return renew_time is None or now - renew_time > timedelta(seconds=duration_seconds)


class LeaderElector:
    """Holds (or waits for) the Lease; ``is_leader()`` is what the scheduler asks before every pass."""

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
        self._valid_until = 0.0

    def is_leader(self) -> bool:
        return self._monotonic() < self._valid_until

    async def run(self) -> None:
        """Try to acquire or renew forever; cancel to stop (the Lease is then released)."""
        try:
            while True:
                was_leader = self.is_leader()
                try:
                    if await self._try_acquire_or_renew():
                        self._valid_until = self._monotonic() + self.config.lease_duration - self.config.renew_period
                except ApiException as error:
                    log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, error.reason)
                leader = self.is_leader()
                LEADER.set(1 if leader else 0)
                if leader and not was_leader:
                    log.info(
                        "acquired lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity
                    )
                    self._on_elected()
                elif was_leader and not leader:
                    log.warning("lost lease %s/%s", self.config.namespace, self.config.name)
                await asyncio.sleep(self.config.renew_period if leader else min(self.config.renew_period, 2.0))
        finally:
            await asyncio.shield(self._release())

    async def _try_acquire_or_renew(self) -> bool:
        config = self.config
        now = datetime.now(UTC)
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
                await self._api.create_namespaced_lease(config.namespace, body)
            except ApiException as conflict:
                if conflict.status == 409:
                    return False
                raise
            return True
        spec: Any = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity
        duration = float(spec.lease_duration_seconds or config.lease_duration)
        if holder == config.identity:
            lease.spec = self._spec(now, acquire=spec.acquire_time or now, transitions=spec.lease_transitions or 0)
        elif holder and not lease_expired(spec.renew_time, duration, now):
            return False
        else:
            lease.spec = self._spec(now, acquire=now, transitions=(spec.lease_transitions or 0) + 1)
        try:
            await self._api.replace_namespaced_lease(config.name, config.namespace, lease)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def _spec(self, now: datetime, acquire: datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.config.identity,
            lease_duration_seconds=round(self.config.lease_duration),
            acquire_time=acquire,
            renew_time=now,
            lease_transitions=transitions,
        )

    async def _release(self) -> None:
        """On a clean shutdown, hand the Lease over at once instead of making the next leader wait."""
        if not self.is_leader():
            return
        self._valid_until = 0.0
        LEADER.set(0)
        try:
            lease = await self._api.read_namespaced_lease(self.config.name, self.config.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.config.identity:
                released: Any = None  # the client's models type these fields without None
                lease.spec.holder_identity = released
                lease.spec.renew_time = released
                await self._api.replace_namespaced_lease(self.config.name, self.config.namespace, lease)
        except ApiException as error:
            log.warning("could not release lease: %s", error.reason)
