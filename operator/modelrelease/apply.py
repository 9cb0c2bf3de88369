"""Apply the engine's actions to the cluster, in an order that never exposes users to an unready version.

Order: per-version ConfigMaps and Deployments first (a Deployment mounts its
ConfigMap), then the role Services, then the route, then scale-downs and
deletions last, so traffic has moved off a version before its pods go.
Events and consumed requests are one-off and go last: they describe what
was just done.

The candidate's replica count is the router's business (``RoutePlan``): the
replicas router needs a number of pods to make a weight, a mesh router only
enough capacity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.engine.actions import (
    Action,
    ConsumeRequest,
    DeleteDeployment,
    EmitEvent,
    EnsureDeployment,
    FixedReplicas,
    ScaleToZero,
    SetRoute,
)
from modelrelease.kube.client import Kube, Manifest
from modelrelease.kube.manifests import (
    Owner,
    build_config_map,
    build_deployment,
    build_services,
    config_map_name,
    deployment_name,
)
from modelrelease.observe import request_annotation
from modelrelease.routing.base import ReleaseTarget, RoutePlan, Router, RouteRequest

log = logging.getLogger("modelrelease.apply")


@dataclass(frozen=True)
class RouteIntent:
    """The engine's SetRoute (if any) with the router's plan for it."""

    target: ReleaseTarget
    plan: RoutePlan


def route_intent(
    router: Router, namespace: str, release: str, uid: str, spec: ModelReleaseSpec, actions: Sequence[Action]
) -> RouteIntent | None:
    route = next((a for a in actions if isinstance(a, SetRoute)), None)
    if route is None:
        return None
    target = ReleaseTarget(
        namespace=namespace,
        release=release,
        stable_version=route.stable_version,
        candidate_version=route.candidate_version,
        stable_replicas=spec.serving.replicas,
        owner_uid=uid,
    )
    request = RouteRequest(weight=route.weight, mirror=route.mirror, match=route.match)
    return RouteIntent(target, router.plan(target, request))


def replicas_for(action: EnsureDeployment, intent: RouteIntent | None) -> int:
    if isinstance(action.replicas, FixedReplicas):
        return action.replicas.count
    if intent is not None and intent.target.candidate_version == action.version:
        planned = intent.plan.candidate_replicas
        if planned is not None:
            return planned
    return max(1, math.ceil(action.replicas.full * action.replicas.percent / 100))


async def apply_actions(
    kube: Kube,
    router: Router,
    release: Manifest,
    spec: ModelReleaseSpec,
    actions: Sequence[Action],
    intent: RouteIntent | None,
) -> None:
    metadata = release["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    owner = Owner(name, namespace, metadata["uid"])
    for action in actions:
        if isinstance(action, EnsureDeployment):
            await kube.apply(build_config_map(owner, spec, action.version))
            replicas = replicas_for(action, intent)
            await kube.apply(build_deployment(owner, spec, action.version, action.role, replicas))
    if intent is not None:
        services = build_services(owner, intent.target.stable_version, intent.target.candidate_version)
        for service in services[1:]:
            await kube.apply(service)
        await router.apply(intent.target, intent.plan)
    for action in actions:
        if isinstance(action, ScaleToZero):
            await kube.scale(namespace, deployment_name(name, action.version), 0)
        elif isinstance(action, DeleteDeployment):
            await kube.delete_deployment(namespace, deployment_name(name, action.version))
            await kube.delete_config_map(namespace, config_map_name(name, action.version))
    consumed = [request_annotation(a.request.kind) for a in actions if isinstance(a, ConsumeRequest)]
    await kube.remove_annotations(namespace, name, consumed)
    for action in actions:
        if isinstance(action, EmitEvent):
            log.info("%s: %s", action.reason, action.message)
            await kube.event(release, action.type, action.reason, action.message)
