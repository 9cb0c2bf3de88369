"""Apply the engine's actions to the cluster, in an order that never exposes users to an unready version.

Order: per-version ConfigMaps and Deployments first (a Deployment mounts its
ConfigMap), then the role Services, then the route, then scale-downs and
deletions last, so traffic has moved off a version before its pods go.
Consumed requests are one-off and go last: a request is removed only once
what it asked for was applied.  Events are not applied here: they record the
decision, which is committed when the status is written, so the pass posts
them (``post_events``) after the applies even when one of them fails.

The candidate's replica count is the router's business (``RoutePlan``): the
replicas router needs a number of pods to make a weight (and may scale the
stable version up for a small one), a mesh router only enough capacity.

Who owns ``spec.replicas`` (the HPA policy): the operator sizes each
version's Deployment (the stable at ``spec.serving.replicas``, the
candidate as the router plans) *unless* a HorizontalPodAutoscaler in the
namespace targets that Deployment.  Then the HPA owns its replicas, as a
Flagger or Argo Rollouts user expects: the operator's apply leaves the
field out (handing it over without a reset, see ``kube.client``), except to
bring a Deployment up from zero, which an HPA never does.  Retiring a
version still scales it to zero (an HPA stops acting at zero).  The
operator still waits for ``spec.serving.replicas`` ready pods of a new
stable before it retires the old one, so keep the HPA's ``minReplicas`` at
least that; and under the replicas router the candidate's pods are its
traffic share, so an HPA on a candidate changes the weight users see
(status shows the weight reached).

Why ``writes_pending``: a pass that would write nothing (every object as the
cache holds it, no event, no scale, no request to consume) skips the status
precondition too, so an idle release woken by an event costs one read
(``reconcile``).  It is judged on the same manifests ``apply_actions`` would
send, and answers "yes" whenever it cannot tell (no cache, a router that
edits a user's object).

Objects the release does not own (no ownerReference to its uid) are never
applied over: ``Kube.apply`` raises ``OwnershipConflict`` and the pass stops
before writing anything more.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease.api.annotations import request_annotation
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
from modelrelease.kube.client import Kube, Manifest, describe_api_error
from modelrelease.kube.manifests import (
    Owner,
    build_config_map,
    build_deployment,
    build_services,
    config_map_name,
    deployment_name,
)
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
        route_name=router.route_of(spec),
        retiring_version=route.retiring_version,
    )
    request = RouteRequest(weight=route.weight, mirror=route.mirror, match=route.match)
    return RouteIntent(target, router.plan(target, request))


def replicas_for(action: EnsureDeployment, intent: RouteIntent | None) -> int:
    if isinstance(action.replicas, FixedReplicas):
        if intent is not None and action.role == "stable" and intent.target.stable_version == action.version:
            # The replicas router may scale the stable version up for a small weight (routing.replicas).
            return max(action.replicas.count, intent.plan.stable_replicas or 0)
        return action.replicas.count
    if intent is not None and intent.target.candidate_version == action.version:
        planned = intent.plan.candidate_replicas
        if planned is not None:
            return planned
    return max(1, math.ceil(action.replicas.full * action.replicas.percent / 100))


async def _nothing() -> set[str]:
    return set()


async def post_events(kube: Kube, release: Manifest, actions: Sequence[Action]) -> None:
    """Post the decision's events; an event the API server refuses is logged, never a reason to stop acting.

    Called after the applies, also when one failed: a rollback whose
    scale-down or route change fails (and is retried by the next pass, which
    sees the status already rolled back and emits nothing new) still tells
    the user why it rolled back.
    """
    for action in actions:
        if isinstance(action, EmitEvent):
            log.info("%s: %s", action.reason, action.message)
            try:
                await kube.event(release, action.type, action.reason, action.message)
            except ApiException as error:
                log.warning("event %s not posted: %s", action.reason, describe_api_error(error))


def _deployment_manifest(
    owner: Owner,
    spec: ModelReleaseSpec,
    wanted: EnsureDeployment,
    intent: RouteIntent | None,
    autoscaled: set[str],
    running: Mapping[int, int] | None,
) -> Manifest:
    replicas: int | None = replicas_for(wanted, intent)
    if deployment_name(owner.name, wanted.version) in autoscaled and (running or {}).get(wanted.version, 0) > 0:
        replicas = None
    return build_deployment(owner, spec, wanted.version, wanted.role, replicas)


def _version_manifests(
    owner: Owner,
    spec: ModelReleaseSpec,
    ensured: Sequence[EnsureDeployment],
    intent: RouteIntent | None,
    autoscaled: set[str],
    running: Mapping[int, int] | None,
) -> list[Manifest]:
    """Each ensured version's ConfigMap then Deployment, in the order they are applied (a Deployment mounts its ConfigMap)."""
    manifests: list[Manifest] = []
    for wanted in ensured:
        manifests.append(build_config_map(owner, spec, wanted.version))
        manifests.append(_deployment_manifest(owner, spec, wanted, intent, autoscaled, running))
    return manifests


def _role_services(owner: Owner, intent: RouteIntent | None) -> list[Manifest]:
    """``<name>-stable`` and ``<name>-canary`` (the ``<name>`` Service is the replicas router's to shape)."""
    if intent is None:
        return []
    return build_services(owner, intent.target.stable_version, intent.target.candidate_version)[1:]


async def writes_pending(
    kube: Kube,
    router: Router,
    release: Manifest,
    spec: ModelReleaseSpec,
    actions: Sequence[Action],
    intent: RouteIntent | None,
    running: Mapping[int, int] | None = None,
) -> bool:
    """Whether ``apply_actions`` with the same arguments would send any request that writes.

    Judged on the manifests ``apply_actions`` builds (``_version_manifests``,
    ``_role_services``, the router's ``desired_objects``), so the two cannot
    drift apart.
    """
    if kube.cache is None:
        return True
    metadata = release["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    owner = Owner(name, namespace, metadata["uid"])
    for action in actions:
        if isinstance(action, EmitEvent | ConsumeRequest | DeleteDeployment):
            return True
        if (
            isinstance(action, ScaleToZero)
            and kube.cached_replicas(namespace, deployment_name(name, action.version)) != 0
        ):
            return True
    ensured = [a for a in actions if isinstance(a, EnsureDeployment)]
    autoscaled = await kube.autoscaled_deployments(namespace) if ensured else set()
    manifests = _version_manifests(owner, spec, ensured, intent, autoscaled, running) + _role_services(owner, intent)
    if intent is not None:
        route_objects = getattr(router, "desired_objects", None)
        if route_objects is None:
            return True  # a router that edits a user's object: only its own apply can tell
        manifests += route_objects(intent.target, intent.plan)
    return any(kube.would_change(manifest) for manifest in manifests)


async def apply_actions(
    kube: Kube,
    router: Router,
    release: Manifest,
    spec: ModelReleaseSpec,
    actions: Sequence[Action],
    intent: RouteIntent | None,
    running: Mapping[int, int] | None = None,
) -> None:
    """Apply ``actions``; ``running`` is each existing Deployment's current replicas, by version."""
    metadata = release["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    owner = Owner(name, namespace, metadata["uid"])
    ensured = [a for a in actions if isinstance(a, EnsureDeployment)]
    services = _role_services(owner, intent)
    # Everything about to be applied is read at once (ownership, HPA), not one round trip per object.
    names = [("ConfigMap", config_map_name(name, a.version)) for a in ensured]
    names += [("Deployment", deployment_name(name, a.version)) for a in ensured]
    names += [("Service", s["metadata"]["name"]) for s in services]
    autoscaled, *found = await asyncio.gather(
        kube.autoscaled_deployments(namespace) if ensured else _nothing(),
        *(kube.read_object(kind, namespace, object_name) for kind, object_name in names),
    )
    live = dict(zip(names, found, strict=True))
    for manifest in _version_manifests(owner, spec, ensured, intent, autoscaled, running) + services:
        await kube.apply(manifest, live[(manifest["kind"], manifest["metadata"]["name"])])
    if intent is not None:
        await router.apply(intent.target, intent.plan)
    for action in actions:
        if isinstance(action, ScaleToZero):
            await kube.scale(namespace, deployment_name(name, action.version), 0)
        elif isinstance(action, DeleteDeployment):
            await kube.delete_deployment(namespace, deployment_name(name, action.version))
            await kube.delete_config_map(namespace, config_map_name(name, action.version))
    annotations = metadata.get("annotations") or {}
    keys = [request_annotation(a.request.kind) for a in actions if isinstance(a, ConsumeRequest)]
    consumed = {key: str(annotations[key]) for key in keys if key in annotations}
    kept = await kube.remove_annotations(namespace, name, consumed)
    if kept:
        log.info("requests re-written since they were read, left for the next pass: %s", ", ".join(kept))
