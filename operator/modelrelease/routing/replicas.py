"""The ``replicas`` router: split traffic by replica counts, as kube-proxy does.

kube-proxy spreads a Service's connections evenly over its ready endpoints,
so with the stable version at its full N replicas and the candidate at c,
the candidate receives c / (N + c) of the traffic.  The stable version keeps
its full capacity throughout (docs/architecture.md, "The routers"), so small weights are
approximate: 5% of 3 stable replicas still needs one candidate pod (25%).
Status therefore reports the weight achieved, computed from *ready* pods of
the current template.

Keeping users off the candidate: the smoke test needs a Ready candidate pod,
and a Ready pod behind the ``<name>`` Service would get user traffic.  So this
router owns the ``<name>`` Service's selector: it selects only the stable
version while the candidate may receive no users, and every version of the
release once it may.

What it cannot do, and what happens instead (the handler posts a Warning
event and a ``RouteSupported=False`` condition with ``limitation``):

- mirror (a shadow stage): kube-proxy cannot copy requests.  The stage runs
  as the smallest canary the router can make, one candidate pod, so it can
  still be judged; users are served by the candidate during it.
- match (an A/B cohort): kube-proxy cannot look at headers.  The stage's
  weight applies to all users.

A weight of 100 cannot be reached before promotion (the stable version keeps
its capacity); it is served as an even split, and promotion does the rest.
"""

from __future__ import annotations

from modelrelease.kube.client import Kube
from modelrelease.kube.manifests import LABEL_VERSION, Owner, build_service, deployment_name
from modelrelease.kube.readiness import current_ready
from modelrelease.routing.base import ReleaseTarget, RoutePlan, RouteRequest, RouteState

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


def plan_route(target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
    """The pods the candidate needs for ``request`` and, in words, what kube-proxy cannot do of it."""
    stable = target.stable_replicas
    limits: list[str] = []
    weight = request.weight
    if request.mirror and not weight:
        replicas = 1
        limits.append(
            f"the replicas router cannot mirror traffic: the shadow stage runs as a canary on one candidate pod "
            f"(about {achieved_weight(stable, 1)}% of users are served by the candidate)"
        )
    else:
        replicas = candidate_replicas(stable, weight)
    if request.match and weight:
        limits.append(f"the replicas router cannot match headers: the {weight}% split applies to all users")
    if target.candidate_version is None or replicas == 0:
        return RoutePlan(request=request, weight=0, candidate_replicas=None, limitation="; ".join(limits))
    return RoutePlan(
        request=request,
        weight=achieved_weight(stable, replicas),
        candidate_replicas=replicas,
        limitation="; ".join(limits),
    )


def main_service_version(target: ReleaseTarget, plan: RoutePlan) -> int | None:
    """The one version the ``<name>`` Service selects, or None for every version of the release.

    Only the stable version while a candidate exists but may get no users;
    every version otherwise (after a promotion the previous stable keeps
    serving until the new one is at full capacity).
    """
    if target.candidate_version is not None and plan.candidate_replicas is None:
        return target.stable_version
    return None


class ReplicasRouter:
    name = "replicas"
    supports_mirror = False
    supports_match = False

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def plan(self, target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
        return plan_route(target, request)

    async def apply(self, target: ReleaseTarget, plan: RoutePlan) -> None:
        """Point the ``<name>`` Service at the right versions; the Deployment's replicas do the rest."""
        owner = Owner(target.release, target.namespace, target.owner_uid)
        await self._kube.apply(build_service(owner, target.release, main_service_version(target, plan)))

    async def observe(self, target: ReleaseTarget, plan: RoutePlan) -> RouteState:
        service = await self._kube.read_service(target.namespace, target.release)
        selector = dict(service.spec.selector or {}) if service is not None and service.spec is not None else {}
        selected_version = selector.get(LABEL_VERSION)
        stable_ready = await self._ready(target, target.stable_version)
        candidate = target.candidate_version
        candidate_ready = 0 if candidate is None else await self._ready(target, candidate)
        candidate_selected = candidate is not None and selected_version in (None, str(candidate))
        weight = achieved_weight(stable_ready, candidate_ready) if candidate_selected else 0
        wanted_selector = main_service_version(target, plan)
        selector_right = service is not None and selected_version == (
            None if wanted_selector is None else str(wanted_selector)
        )
        pods_right = plan.candidate_replicas is None or candidate_ready == plan.candidate_replicas
        reached = selector_right and pods_right and stable_ready >= target.stable_replicas
        return RouteState(
            weight=weight,
            reached=reached,
            message=f"{candidate_ready} candidate and {stable_ready} stable pods ready; users reach the candidate: "
            f"{'yes' if candidate_selected else 'no'}",
        )

    async def _ready(self, target: ReleaseTarget, version: int) -> int:
        return current_ready(
            await self._kube.read_deployment(target.namespace, deployment_name(target.release, version))
        )
