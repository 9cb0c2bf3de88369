"""Read the world for one pass: Deployments, the candidate's model state, manual requests.

Why pods are asked directly (gRPC to each pod IP) and not through a
Service: a Service only lists *ready* pods, and a candidate whose model
failed to load never becomes ready, yet its server's error message is
exactly what the rollback event must carry.  Only pods of the Deployment's
current template count: after a serving change the old pods still answer.

Why the pods' creation time is read: the load deadline counts from it
(``ModelLoad.loading_since``), so time the operator itself was down, or
spent before the Deployment existed, is never counted as load time.  Only
Deployments with an ownerReference to the release count as its versions: a
look-alike someone else made is not adopted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from modelrelease.api.annotations import REQUEST_KINDS, request_annotation
from modelrelease.engine.observations import DeploymentState, ModelLoad, ModelState, Request
from modelrelease.kube.client import Kube
from modelrelease.kube.manifests import GRPC_PORT, LABEL_RELEASE, LABEL_VERSION
from modelrelease.kube.readiness import current_ready, desired_replicas
from modelrelease.serving.client import ModelLoadState, model_status

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"
MODEL_STATUS_TIMEOUT = 3.0


def read_requests(annotations: Mapping[str, str] | None) -> tuple[Request, ...]:
    """Manual requests written as annotations, in a fixed order so a pass is reproducible."""
    found: list[Request] = []
    for kind in REQUEST_KINDS:
        value = (annotations or {}).get(request_annotation(kind))
        if value is None:
            continue
        stage = value.strip() or None if kind == "approve" else None
        found.append(Request(kind=kind, stage=stage))
    return tuple(found)


@dataclass(frozen=True)
class VersionPods:
    """The pods of one version's current template, for model status and smoke."""

    version: int
    addresses: tuple[str, ...]
    """``ip:port`` of each running, non-terminating pod (ready or not)."""
    ready_addresses: tuple[str, ...]
    loading_since: datetime | None = None
    """When the oldest current pod was created, else since when its ReplicaSet fails to create any (None: neither)."""


async def read_deployments(kube: Kube, namespace: str, release: str, owner_uid: str) -> dict[int, Any]:
    """The release's Deployments by version (the version label the operator wrote, and owned by the release)."""
    found: dict[int, Any] = {}
    for deployment in await kube.list_deployments(namespace, {LABEL_RELEASE: release}):
        labels = deployment.metadata.labels or {}
        version = labels.get(LABEL_VERSION, "")
        owners = {ref.uid for ref in deployment.metadata.owner_references or []}
        if version.isdigit() and owner_uid in owners:
            found[int(version)] = deployment
    return found


def deployment_states(deployments: Mapping[int, Any]) -> tuple[DeploymentState, ...]:
    return tuple(
        DeploymentState(
            version=v,
            desired=desired_replicas(d),
            ready=current_ready(d),
            created_at=d.metadata.creation_timestamp,
        )
        for v, d in sorted(deployments.items())
    )


def _failing_to_create_since(deployment: Any) -> datetime | None:
    """When the Deployment's ReplicaSet started failing to create pods (quota, admission), if it does."""
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "ReplicaFailure" and condition.status == "True":
            moment = condition.last_transition_time or condition.last_update_time
            return moment if isinstance(moment, datetime) else None
    return None


async def current_pods(kube: Kube, namespace: str, release: str, deployment: Any) -> VersionPods:
    """Pods of the Deployment's current ReplicaSet (matched by revision, then by pod-template-hash)."""
    version = int((deployment.metadata.labels or {})[LABEL_VERSION])
    selector = {LABEL_RELEASE: release, LABEL_VERSION: str(version)}
    revision = (deployment.metadata.annotations or {}).get(REVISION_ANNOTATION)
    replica_sets, pods = await asyncio.gather(
        kube.list_replica_sets(namespace, selector), kube.list_pods(namespace, selector)
    )
    current_hash: str | None = None
    for replica_set in replica_sets:
        if revision is not None and (replica_set.metadata.annotations or {}).get(REVISION_ANNOTATION) == revision:
            current_hash = (replica_set.metadata.labels or {}).get(TEMPLATE_HASH_LABEL)
    addresses: list[str] = []
    ready: list[str] = []
    created: list[datetime] = []
    for pod in pods:
        if current_hash is None or (pod.metadata.labels or {}).get(TEMPLATE_HASH_LABEL) != current_hash:
            continue
        if pod.metadata.deletion_timestamp is not None:
            continue
        if isinstance(pod.metadata.creation_timestamp, datetime):
            created.append(pod.metadata.creation_timestamp)
        if pod.status is None or not pod.status.pod_ip:
            continue
        address = f"{pod.status.pod_ip}:{GRPC_PORT}"
        addresses.append(address)
        if _is_ready(pod):
            ready.append(address)
    since = min(created) if created else _failing_to_create_since(deployment)
    return VersionPods(version, tuple(sorted(addresses)), tuple(sorted(ready)), since)


def _is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def aggregate_model_load(version: int, states: list[ModelLoadState], expected: int) -> ModelLoad:
    """One verdict over every candidate pod: any failure fails it, AVAILABLE only when all of them are."""
    failed = [s for s in states if s.failed and s.error_code != 0]
    if failed:
        return ModelLoad(version=version, state="FAILED", message=failed[0].describe())
    if states and len(states) >= expected and all(s.available for s in states):
        return ModelLoad(version=version, state="AVAILABLE")
    state: ModelState = "LOADING" if any(s.state in ("START", "LOADING") for s in states) else "UNKNOWN"
    detail = "; ".join(sorted({s.describe() for s in states})) or "no running pods yet"
    return ModelLoad(version=version, state=state, message=f"{len(states)}/{expected} pods answered: {detail}")


async def model_load(model: str, pods: VersionPods, expected: int) -> ModelLoad:
    """TF Serving's ModelService.GetModelStatus asked on every current pod of the version."""
    states = await asyncio.gather(
        *(model_status(address, model, pods.version, MODEL_STATUS_TIMEOUT) for address in pods.addresses)
    )
    load = aggregate_model_load(pods.version, list(states), max(1, expected))
    return replace(load, loading_since=pods.loading_since)
