"""The ``replicas`` router: split traffic by replica counts, as kube-proxy does.

kube-proxy spreads a Service's connections evenly over its ready endpoints,
so with the stable version at s replicas and the candidate at c, the
candidate receives c / (s + c) of the traffic.  Status reports the weight
achieved, computed from *ready* pods of the current template.

The overshoot rule (``split``): a weight stage never exposes more than 5
points more (or fewer) users than it asks for.  With few stable replicas the
smallest canary, one pod, is a large share (1 stable pod: 50%), so for the
stage the stable version is scaled *up* beyond ``spec.serving.replicas``:
the smallest total of pods whose split is within ``TOLERANCE`` points of the
weight, never fewer stable pods than the spec asks for.  The default stages
on the minimal example (1 replica): canary-10 runs 6 stable pods and 1
candidate pod (14%), canary-50 one of each (50%).  The stable version goes
back to its own size once the stage is over (rollback or promotion).

Keeping users off the candidate: the smoke test needs a Ready candidate pod,
and a Ready pod behind the ``<name>`` Service would get user traffic.  So this
router owns the ``<name>`` Service's selector: it selects only the stable
version, before any candidate exists and while the candidate may receive no
users, and every version of the release while two may serve (a stage that
lets users reach the candidate, a handover after promotion).

What it cannot do, mirror (a shadow stage) and match headers (an A/B
cohort), is refused at admission (``api.spec``): such a release must use
the gatewayApi or istio router.  A weight of 100 cannot be reached before
promotion; it is served as an even split, and promotion does the rest.
"""

from __future__ import annotations

from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.kube.client import Kube
from modelrelease.kube.manifests import LABEL_VERSION, Owner, build_service, deployment_name
from modelrelease.kube.readiness import current_ready
from modelrelease.routing.base import ReleaseTarget, RoutePlan, RouteRequest, RouteState

TOLERANCE = 5
"""Points by which the share of users a weight stage reaches may differ from the weight it asks for."""


def split(stable_replicas: int, weight: int) -> tuple[int, int]:
    """(stable, candidate) pods for ``weight`` percent: the fewest pods within ``TOLERANCE`` points of it.

    The stable version keeps at least ``stable_replicas``; the candidate
    gets at least one pod for any positive weight.  100 is an even split
    (reached by promotion, not by pods).
    """
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")
    if stable_replicas < 1:
        raise ValueError(f"stable replicas must be at least 1, got {stable_replicas}")
    if weight == 0:
        return stable_replicas, 0
    if weight == 100:
        return stable_replicas, stable_replicas
    total = stable_replicas + 1
    while True:
        candidate = min(max(1, round(weight * total / 100)), total - stable_replicas)
        if abs(100 * candidate / total - weight) <= TOLERANCE:
            return total - candidate, candidate
        total += 1


def candidate_replicas(stable_replicas: int, weight: int) -> int:
    """Candidate pods for ``weight`` percent under the overshoot rule (``split``)."""
    return split(stable_replicas, weight)[1]


def achieved_weight(stable_ready: int, candidate_ready: int) -> int:
    """Percent of kube-proxy's traffic that reaches the candidate."""
    total = stable_ready + candidate_ready
    return 0 if total == 0 else round(100 * candidate_ready / total)


def plan_route(target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
    """The pods each version needs for ``request`` (admission guarantees it asks for no mirror or match)."""
    stable, replicas = split(target.stable_replicas, request.weight)
    if target.candidate_version is None or replicas == 0:
        return RoutePlan(request=request, weight=0, candidate_replicas=None, stable_replicas=None)
    return RoutePlan(
        request=request,
        weight=achieved_weight(stable, replicas),
        candidate_replicas=replicas,
        stable_replicas=stable,
    )


def main_service_version(target: ReleaseTarget, plan: RoutePlan) -> int | None:
    """The one version the ``<name>`` Service selects, or None for every version of the release.

    Every version only while two may serve users at once: a candidate in a
    stage that lets users in, or the previous stable during a handover
    (after a promotion it keeps serving until the new one is at full
    capacity).  Otherwise the stable version alone, *also when no candidate
    exists*: the selector is already narrow when a candidate's Deployment
    appears, so its Ready pods are never an endpoint of the user Service.
    Narrowing it only in the pass that created the candidate raced with the
    Service's endpoints under load: a candidate that failed its smoke test
    answered 3 of 308 user requests (tests/e2e/test_rollout_rollback.py).
    """
    if target.candidate_version is not None and plan.candidate_replicas is not None:
        return None
    if target.retiring_version is not None and target.retiring_version != target.stable_version:
        return None
    return target.stable_version


class ReplicasRouter:
    name = "replicas"

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def route_of(self, spec: ModelReleaseSpec) -> str:
        return ""

    def plan(self, target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
        return plan_route(target, request)

    def desired_objects(self, target: ReleaseTarget, plan: RoutePlan) -> list[dict[str, object]]:
        """What ``apply`` applies (``apply.writes_pending`` compares it with the cache)."""
        owner = Owner(target.release, target.namespace, target.owner_uid)
        return [build_service(owner, target.release, main_service_version(target, plan))]

    async def apply(self, target: ReleaseTarget, plan: RoutePlan) -> None:
        """Point the ``<name>`` Service at the right versions; the Deployments' replicas do the rest."""
        for manifest in self.desired_objects(target, plan):
            await self._kube.apply(manifest)

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
        stable_wanted = plan.stable_replicas or target.stable_replicas
        reached = selector_right and pods_right and stable_ready >= stable_wanted
        return RouteState(
            weight=weight,
            reached=reached,
            message=f"{candidate_ready} candidate and {stable_ready} stable pods ready; users reach the candidate: "
            f"{'yes' if candidate_selected else 'no'}",
        )

    async def release(self, namespace: str, release: str, route_name: str) -> None:
        """Nothing to put back: the ``<name>`` Service is the release's own, removed with it."""

    async def _ready(self, target: ReleaseTarget, version: int) -> int:
        return current_ready(
            await self._kube.read_deployment(target.namespace, deployment_name(target.release, version))
        )
