"""The ``replicas`` router: split traffic by replica counts, as kube-proxy does.

kube-proxy spreads a Service's connections evenly over its ready endpoints,
so with the stable version at its full N replicas and the candidate at c,
the candidate receives c / (N + c) of the traffic.  The stable version keeps
its full capacity throughout (DESIGN.md section 2), so small weights are
approximate: 5% of 3 stable replicas still needs one candidate pod (25%).
Status therefore reports the weight achieved, computed from *ready* pods.

This router can express neither mirroring nor header matches; a stage that
asks for them is refused by validation when this router is chosen.
"""

from __future__ import annotations

from typing import Any

from modelrelease.kube.manifests import deployment_name
from modelrelease.routing.base import ReleaseTarget, RouteRequest, RouteState, UnsupportedRoute

# A weight this close to 100 would need an absurd number of candidate pods;
# the full stage (100) is reached by promotion instead.
MAX_CANDIDATE_FACTOR = 4


def candidate_replicas(stable_replicas: int, weight: int) -> int:
    """Candidate replicas whose share of all ready pods is nearest ``weight`` percent (at least one)."""
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")
    if weight == 0:
        return 0
    if weight == 100:
        return stable_replicas
    exact = stable_replicas * weight / (100 - weight)
    return max(1, min(round(exact), stable_replicas * MAX_CANDIDATE_FACTOR))


def achieved_weight(stable_ready: int, candidate_ready: int) -> int:
    """Percent of kube-proxy's traffic that reaches the candidate."""
    total = stable_ready + candidate_ready
    return 0 if total == 0 else round(100 * candidate_ready / total)


class ReplicasRouter:
    name = "replicas"
    supports_mirror = False
    supports_match = False

    def __init__(self, apps_api: Any) -> None:
        """``apps_api`` is a kubernetes_asyncio ``AppsV1Api``."""
        self._apps = apps_api

    async def apply(self, target: ReleaseTarget, request: RouteRequest) -> None:
        if request.mirror or request.match:
            raise UnsupportedRoute("the replicas router cannot mirror traffic or match headers")
        if target.candidate_version is None:
            return
        replicas = candidate_replicas(target.stable_replicas, request.weight)
        await self._apps.patch_namespaced_deployment_scale(
            deployment_name(target.release, target.candidate_version),
            target.namespace,
            {"spec": {"replicas": replicas}},
        )

    async def observe(self, target: ReleaseTarget) -> RouteState:
        stable_ready = await self._ready(target, target.stable_version)
        candidate_ready = 0 if target.candidate_version is None else await self._ready(target, target.candidate_version)
        return RouteState(
            weight=achieved_weight(stable_ready, candidate_ready),
            message=f"{candidate_ready} candidate and {stable_ready} stable pods ready",
        )

    async def _ready(self, target: ReleaseTarget, version: int) -> int:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            deployment = await self._apps.read_namespaced_deployment(
                deployment_name(target.release, version), target.namespace
            )
        except ApiException as error:
            if error.status == 404:
                return 0
            raise
        return int(deployment.status.ready_replicas or 0)
