"""Thin async I/O against the API server: apply, scale, status, events.

Why server-side apply: the operator states the whole object it wants under
its own field manager, so fields it does not state (a mesh's injected
annotations) are left to whoever set them, and re-applying the same object
is a no-op that does not bump generations or restart pods.  It applies with
force, so any field it does state is taken back: that is why the replicas an
HPA owns are left out of the apply altogether (``apply.py``).

Why status patches carry a resourceVersion: two writers (a restarted
operator, a second replica during a lease hand-over) must never overwrite
each other's decisions; a stale write fails with 409 and the next pass
re-reads the world and decides again.  A pass that changes no status still
sends the precondition alone (``patch_status`` with no body): the API server
checks it and, the object being unchanged, writes nothing to etcd (same
resourceVersion, no watch event), so every pass that acts is fenced and an
unchanged release still costs no write.

Why ``apply`` reads the object first: server-side apply with force takes
over whatever exists under the name, so a user's own Service called like
the release would be silently adopted (and given an ownerReference).  An
object that exists without an ownerReference to the release's uid is
refused with ``OwnershipConflict``, and nothing is written to it.

Why replicas can be handed over: a Deployment a HorizontalPodAutoscaler
targets is applied without ``spec.replicas`` (see ``apply``).  Leaving out a
field the operator's apply owned would reset it to its default (1 pod), so
its current value is first applied by a separate field manager
(``HANDOVER_MANAGER``), as the Kubernetes documentation recommends for
handing replicas to an HPA; the HPA's first change then takes the field.

Why reads go to the watch cache first (``kube.cache``): a pass reads the
release's Deployments, ReplicaSets, pods, Services and ConfigMaps from
memory once the cache has listed them; before that, and for an object the
cache does not hold (a user's unlabelled object under a release's name),
the API server is asked, as it was before the cache existed.

Why an apply can be skipped: re-applying an unchanged object is a no-op for
etcd but still a request, and a pass re-states every object it owns.  Each
applied object carries the hash of what was applied
(``modelrelease.io/applied-hash``); an apply is sent only when that hash
differs (the operator changed its mind, including about fields it no
longer states) or the live object no longer holds every field the
manifest states (someone else changed one of them).  Scaling a Deployment
already at the wanted count is skipped the same way.

Why consumed requests are removed with a JSON-patch ``test``: the
annotation is removed only if it still holds the value the pass acted on; a
request re-written meanwhile survives for the next pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.kube.cache import ObjectCache
from modelrelease.kube.fencing import fenced
from modelrelease.kube.quantity import parse_quantity

FIELD_MANAGER = "modelrelease-operator"
HANDOVER_MANAGER = "modelrelease-operator-handover"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLIED_HASH = f"{GROUP}/applied-hash"
"""Annotation holding the hash of the manifest last applied (``Kube.apply`` skips re-sending it)."""

Manifest = dict[str, Any]


def label_selector(selector: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


UNREAD: Any = object()
"""``Kube.apply``'s default for ``live``: the object was not read by the caller."""


class StatusConflict(Exception):
    """The release changed since it was read; the caller re-reads and decides again."""


class OwnershipConflict(Exception):
    """An object of one of the release's names exists and is not the release's; nothing was written to it."""

    def __init__(self, kind: str, namespace: str, name: str, owners: list[str]) -> None:
        self.kind, self.namespace, self.name = kind, namespace, name
        owned_by = f"owned by {', '.join(owners)}" if owners else "it has no owner"
        super().__init__(
            f"{kind} {namespace}/{name} exists and is not owned by this release ({owned_by}); "
            "the operator does not overwrite it: delete or rename it"
        )


def json_pointer(key: str) -> str:
    """One JSON-pointer path segment (RFC 6901): annotation keys hold '/'."""
    return key.replace("~", "~0").replace("/", "~1")


def _controller_uid(manifest: Manifest) -> str | None:
    references = manifest["metadata"].get("ownerReferences") or []
    return next((str(r["uid"]) for r in references if r.get("controller")), None)


def _owners(live: Any) -> list[tuple[str, str]]:
    """(uid, "Kind/name") of each owner of a live object."""
    return [(str(r.uid), f"{r.kind}/{r.name}") for r in (live.metadata.owner_references or [])]


def _applies_replicas(live: Any) -> bool:
    """Whether the operator's own apply owns ``spec.replicas`` of a live Deployment."""
    for entry in live.metadata.managed_fields or []:
        spec_fields = (entry.fields_v1 or {}).get("f:spec") or {}
        if entry.manager == FIELD_MANAGER and entry.operation == "Apply" and "f:replicas" in spec_fields:
            return True
    return False


def applied_hash(manifest: Manifest) -> str:
    """A short, stable digest of what ``manifest`` states."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def with_applied_hash(manifest: Manifest) -> Manifest:
    """``manifest`` with its own hash in ``metadata.annotations`` (computed without that annotation)."""
    metadata = manifest["metadata"]
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != APPLIED_HASH}
    plain = {**manifest, "metadata": {**metadata, "annotations": annotations}}
    if not annotations:
        del plain["metadata"]["annotations"]
    stamped = {**annotations, APPLIED_HASH: applied_hash(plain)}
    return {**manifest, "metadata": {**metadata, "annotations": stamped}}


def same_quantity(wanted: Any, live: Any) -> bool:
    """Whether two resource quantities are the same amount: the API server stores ``0.5`` as ``500m``."""
    try:
        return bool(parse_quantity(wanted) == parse_quantity(live))
    except ValueError:
        return False


def holds(wanted: Any, live: Any, quantities: bool = False) -> bool:
    """Whether ``live`` (API JSON) holds every field ``wanted`` states, with the same value.

    Maps: every key of ``wanted`` (an empty map or list also matches an
    absent field: the API server drops them); lists: same length, item by
    item; scalars: equal, and values under ``requests`` or ``limits`` equal
    as quantities (the API server rewrites them to its canonical form, and
    comparing the strings would re-apply an unchanged Deployment on every
    pass).  Fields only ``live`` has (defaults, other managers' fields,
    status) do not matter.
    """
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return False
        for key, value in wanted.items():
            if key not in live:
                if value in ({}, [], None):
                    continue
                return False
            if not holds(value, live[key], quantities or key in ("requests", "limits")):
                return False
        return True
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(wanted) == len(live)
            and all(holds(w, v, quantities) for w, v in zip(wanted, live, strict=True))
        )
    if isinstance(wanted, bool) or isinstance(live, bool):
        return wanted is live
    if quantities and wanted != live and isinstance(wanted, str | int | float) and isinstance(live, str | int | float):
        return same_quantity(wanted, live)
    return bool(wanted == live)


def up_to_date(manifest: Manifest, live: Manifest | None) -> bool:
    """Whether applying ``manifest`` (already stamped ``with_applied_hash``) would change nothing in ``live``."""
    if live is None:
        return False
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(APPLIED_HASH) != manifest["metadata"]["annotations"][APPLIED_HASH]:
        return False
    return holds({k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}, live)


class ReleaseGone(Exception):
    """The release was deleted while a pass was working on it: nothing is left to write status to."""


class Kube:
    """The operator's handful of API calls, behind one object handlers can share."""

    def __init__(
        self,
        api_client: client.ApiClient,
        may_write: Callable[[], bool] = lambda: True,
        cache: ObjectCache | None = None,
    ) -> None:
        """Every request that changes anything first asks ``may_write()`` (is this replica the leader?).

        ``cache`` answers reads of the release's objects once it has listed them (module docstring).
        """
        self.api_client = api_client
        self.cache = cache
        guarded = fenced(api_client, may_write)  # a refused write raises kube.fencing.LeadershipLost
        self.apps = client.AppsV1Api(guarded)
        self.core = client.CoreV1Api(guarded)
        self.custom = client.CustomObjectsApi(guarded)
        self.autoscaling = client.AutoscalingV2Api(guarded)

    async def apply(self, manifest: Manifest, live: Any = UNREAD) -> None:
        """Server-side apply one Deployment, Service or ConfigMap the release owns (``OwnershipConflict`` if not).

        ``live`` is the object as just read (None: absent), when the caller
        read it already (``read_object``); otherwise it is read here.  A
        Deployment given without ``spec.replicas`` (an HPA owns them) keeps
        its current count: see the module docstring on the handover.
        """
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
        if live is UNREAD:
            live = await self.read_object(kind, namespace, name)
        owner = _controller_uid(manifest)
        if live is not None and owner is not None:
            owners = _owners(live)
            if owner not in {uid for uid, _ in owners}:
                raise OwnershipConflict(kind, namespace, name, [who for _, who in owners])
        patch: Any = patchers[kind]
        manifest = with_applied_hash(manifest)
        handover = live is not None and kind == "Deployment" and "replicas" not in manifest["spec"]
        if handover and _applies_replicas(live):
            handover_body = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"replicas": live.spec.replicas},
            }
            await patch(name, namespace, handover_body, field_manager=HANDOVER_MANAGER, force=True, _content_type=APPLY)
        elif live is not None and up_to_date(manifest, self.api_client.sanitize_for_serialization(live)):
            return
        await patch(name, namespace, manifest, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)

    def would_change(self, manifest: Manifest) -> bool:
        """Whether ``apply(manifest)`` would send anything, judged on the cache alone (True when it cannot tell)."""
        metadata = manifest["metadata"]
        live = self._cached(manifest["kind"], metadata["namespace"], metadata["name"])
        if live is None:
            return True
        if manifest["kind"] == "Deployment" and "replicas" not in manifest["spec"] and _applies_replicas(live):
            return True  # the replicas handover is due
        return not up_to_date(with_applied_hash(manifest), self.api_client.sanitize_for_serialization(live))

    def cached_replicas(self, namespace: str, name: str) -> int | None:
        """A Deployment's ``spec.replicas`` as the cache holds it (None: not cached)."""
        live = self._cached("Deployment", namespace, name)
        return None if live is None or live.spec is None else live.spec.replicas

    async def read_object(self, kind: str, namespace: str, name: str) -> Any | None:
        """A Deployment, Service or ConfigMap as stored now, or None when there is none (the cache's copy first)."""
        cached = self._cached(kind, namespace, name)
        if cached is not None:
            return cached
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "Service": self.core.read_namespaced_service,
            "ConfigMap": self.core.read_namespaced_config_map,
        }
        reader: Any = readers[kind]
        try:
            return await reader(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def autoscaled_deployments(self, namespace: str) -> set[str]:
        """Names of the Deployments a HorizontalPodAutoscaler in ``namespace`` targets (they own their replicas).

        Without the right to list HPAs (RBAC) none are known, and the operator sizes every Deployment itself.
        """
        kind = "HorizontalPodAutoscaler"
        if self.cache is not None and self.cache.forbidden(kind):
            return set()
        if self.cache is not None and self.cache.ready(kind, namespace):
            return _autoscaled(self.cache.select(kind, namespace, {}))
        try:
            found = await self.autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace)
        except ApiException as error:
            if error.status in (403, 404):
                return set()
            raise
        return _autoscaled(found.items)

    async def scale(self, namespace: str, name: str, replicas: int) -> bool:
        """Set a Deployment's replicas; False when it does not exist (nothing to scale).

        Nothing is sent when the cache shows the Deployment at ``replicas`` already.
        """
        cached = self._cached("Deployment", namespace, name)
        if cached is not None and cached.spec is not None and cached.spec.replicas == replicas:
            return True
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
        cached = self._cached("Deployment", namespace, name)
        if cached is not None:
            return cached
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

    async def read_custom(
        self, kind: str, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        """A user's route (HTTPRoute, VirtualService) as stored now, or None: the cache's copy once it holds one.

        The cache holds a route only once a router has labelled it with its
        release; before that (and where the cache does not serve the kind)
        the API server is asked.
        """
        cached: dict[str, Any] | None = self._cached(kind, namespace, name)
        if cached is not None:
            return cached
        getter: Any = self.custom.get_namespaced_custom_object
        try:
            found: dict[str, Any] = await getter(group, version, namespace, plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def _cached(self, kind: str, namespace: str, name: str) -> Any | None:
        if self.cache is None or not self.cache.ready(kind, namespace):
            return None
        return self.cache.get(kind, namespace, name)

    def _cached_list(self, kind: str, namespace: str, selector: dict[str, str]) -> list[Any] | None:
        """The cache's objects of ``kind`` matching a selector on the release label, None when not ready."""
        if self.cache is None or not self.cache.ready(kind, namespace):
            return None
        return self.cache.select(kind, namespace, selector)

    async def list_deployments(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        cached = self._cached_list("Deployment", namespace, selector)
        if cached is not None:
            return cached
        found = await self.apps.list_namespaced_deployment(namespace, label_selector=label_selector(selector))
        return list(found.items)

    async def list_replica_sets(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        cached = self._cached_list("ReplicaSet", namespace, selector)
        if cached is not None:
            return cached
        found = await self.apps.list_namespaced_replica_set(namespace, label_selector=label_selector(selector))
        return list(found.items)

    async def list_pods(self, namespace: str, selector: dict[str, str]) -> list[Any]:
        cached = self._cached_list("Pod", namespace, selector)
        if cached is not None:
            return cached
        pods = await self.core.list_namespaced_pod(namespace, label_selector=label_selector(selector))
        return list(pods.items)

    async def read_service(self, namespace: str, name: str) -> Any | None:
        cached = self._cached("Service", namespace, name)
        if cached is not None:
            return cached
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

    async def set_finalizers(self, release: Manifest, finalizers: list[str]) -> Manifest:
        """Replace the release's finalizers if nobody wrote it since it was read; return it as written."""
        metadata = release["metadata"]
        body = {"metadata": {"resourceVersion": metadata["resourceVersion"], "finalizers": finalizers}}
        patch: Any = self.custom.patch_namespaced_custom_object
        try:
            result: Manifest = await patch(
                GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], body, _content_type=MERGE
            )
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{metadata['namespace']}/{metadata['name']} changed since it was read") from error
            if error.status == 404:
                raise ReleaseGone(f"{metadata['namespace']}/{metadata['name']} was deleted during the pass") from error
            raise
        return result

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            config_map = await self.core.read_namespaced_config_map(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(config_map.data or {})

    async def patch_status(
        self, namespace: str, name: str, resource_version: str, status: dict[str, Any] | None
    ) -> str:
        """Replace the release's status if nobody wrote it since ``resource_version``; return the new version.

        ``status`` None checks the precondition only: StatusConflict if the
        release changed, else nothing is written (the resourceVersion stays).
        """
        body: dict[str, Any] = {"metadata": {"resourceVersion": resource_version}}
        if status is not None:
            body["status"] = status
        # The runtime accepts _content_type; the bundled .pyi stubs do not declare it.
        patch: Any = self.custom.patch_namespaced_custom_object_status
        try:
            result = await patch(GROUP, VERSION, namespace, PLURAL, name, body, _content_type=MERGE)
        except ApiException as error:
            if error.status == 409:
                raise StatusConflict(f"{namespace}/{name} changed since resourceVersion {resource_version}") from error
            if error.status == 404:
                raise ReleaseGone(f"{namespace}/{name} was deleted during the pass") from error
            raise
        return str(result["metadata"]["resourceVersion"])

    async def remove_annotations(self, namespace: str, name: str, consumed: Mapping[str, str]) -> list[str]:
        """Consume manual requests: remove each annotation only if it still holds the value that was acted on.

        One JSON patch per key (``test`` the value, then ``remove``), so one
        re-written request does not keep the others; returns the keys left
        in place because they changed (or went) since they were read.
        """
        patch: Any = self.custom.patch_namespaced_custom_object
        kept: list[str] = []
        for key, value in consumed.items():
            path = f"/metadata/annotations/{json_pointer(key)}"
            body = [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]
            try:
                await patch(GROUP, VERSION, namespace, PLURAL, name, body, _content_type=JSON_PATCH)
            except ApiException as error:
                if error.status not in (409, 422):  # 422: the test failed (changed or gone)
                    raise
                kept.append(key)
        return kept

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


def _autoscaled(autoscalers: list[Any]) -> set[str]:
    names: set[str] = set()
    for autoscaler in autoscalers:
        target = autoscaler.spec.scale_target_ref
        if target.kind == "Deployment" and (target.api_version or "apps/v1").startswith("apps/"):
            names.add(str(target.name))
    return names


def describe_api_error(error: ApiException) -> str:
    """The API server's own message (it names the field), not the whole HTTP dump."""
    try:
        return str(json.loads(error.body or b"{}").get("message", error.reason))
    except (TypeError, ValueError):
        return str(error.reason)
