"""Thin async I/O against the API server: apply, scale, status, events.

Why server-side apply: the operator states the whole object it wants under
its own field manager, so fields other controllers own (an HPA's replicas,
a mesh's injected annotations) are left alone, and re-applying the same
object is a no-op that does not bump generations or restart pods.

Why status patches carry a resourceVersion: two writers (a restarted
operator, a second replica during a lease hand-over) must never overwrite
each other's decisions; a stale write fails with 409 and the next pass
re-reads the world and decides again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.kube.fencing import fenced

FIELD_MANAGER = "modelrelease-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

Manifest = dict[str, Any]


def label_selector(selector: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


class StatusConflict(Exception):
    """The release changed since it was read; the caller re-reads and decides again."""


class Kube:
    """The operator's handful of API calls, behind one object handlers can share."""

    def __init__(self, api_client: client.ApiClient, may_write: Callable[[], bool] = lambda: True) -> None:
        """Every request that changes anything first asks ``may_write()`` (is this replica the leader?)."""
        self.api_client = api_client
        guarded = fenced(api_client, may_write)  # a refused write raises kube.fencing.LeadershipLost
        self.apps = client.AppsV1Api(guarded)
        self.core = client.CoreV1Api(guarded)
        self.custom = client.CustomObjectsApi(guarded)

    async def apply(self, manifest: Manifest) -> None:
        """Server-side apply one Deployment, Service or ConfigMap."""
        kind = manifest["kind"]
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        patchers = {
            "Deployment": self.apps.patch_namespaced_deployment,
            "Service": self.core.patch_namespaced_service,
            "ConfigMap": self.core.patch_namespaced_config_map,
        }
        if kind not in patchers:
            raise ValueError(f"the operator does not apply objects of kind {kind}")
        patch: Any = patchers[kind]
        await patch(name, namespace, manifest, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)

    async def scale(self, namespace: str, name: str, replicas: int) -> bool:
        """Set a Deployment's replicas; False when it does not exist (nothing to scale)."""
        try:
            await self.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            await self.apps.delete_namespaced_deployment(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def read_deployment(self, namespace: str, name: str) -> Any | None:
        try:
            return await self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def delete_config_map(self, namespace: str, name: str) -> None:
        try:
            await self.core.delete_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_deployments(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        found = await self.apps.list_namespaced_deployment(namespace, label_selector=label_selector(selector))
        return list(found.items)

    async def list_replica_sets(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        found = await self.apps.list_namespaced_replica_set(namespace, label_selector=label_selector(selector))
        return list(found.items)

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        pods = await self.core.list_namespaced_pod(namespace, label_selector=label_selector(selector))
        return list(pods.items)

    async def read_service(self, namespace: str, name: str) -> Any | None:
        try:
            return await self.core.read_namespaced_service(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def get_release(self, namespace: str, name: str) -> Manifest | None:
        """The release as stored now (with its resourceVersion), or None once it is gone."""
        try:
            found = await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        release: Manifest = found
        return release

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            config_map = await self.core.read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(config_map.data or {})

    async def patch_status(self, namespace: str, name: str, resource_version: str, status: dict[str, Any]) -> str:
        """Replace the release's status if nobody wrote it since ``resource_version``; return the new version."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        # The runtime accepts _content_type; the bundled .pyi stubs do not declare it.
        patch: Any = self.custom.patch_namespaced_custom_object_status
        try:
            result = await patch(GROUP, VERSION, namespace, PLURAL, name, body, _content_type=MERGE)
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{namespace}/{name} changed since resourceVersion {resource_version}") from error
            raise
        return str(result["metadata"]["resourceVersion"])

    async def remove_annotations(self, namespace: str, name: str, keys: list[str]) -> None:
        """Consume manual requests: a merge patch with null deletes each annotation."""
        if not keys:
            return
        body = {"metadata": {"annotations": dict.fromkeys(keys)}}
        patch: Any = self.custom.patch_namespaced_custom_object
        await patch(GROUP, VERSION, namespace, PLURAL, name, body, _content_type=MERGE)

    async def event(self, release: Manifest, event_type: str, reason: str, message: str) -> None:
        """Post a Kubernetes Event on the release (kubectl describe shows it)."""
        metadata = release["metadata"]
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{metadata['name']}.", namespace=metadata["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind="ModelRelease",
                name=metadata["name"],
                namespace=metadata["namespace"],
                uid=metadata.get("uid"),
                resource_version=metadata.get("resourceVersion"),
            ),
            type=event_type,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=FIELD_MANAGER),
            reporting_component=FIELD_MANAGER,
        )
        await self.core.create_namespaced_event(metadata["namespace"], body)


def describe_api_error(error: ApiException) -> str:
    """The API server's own message (it names the field), not the whole HTTP dump."""
    try:
        return str(json.loads(error.body or b"{}").get("message", error.reason))
    except (TypeError, ValueError):
        return str(error.reason)
