"""An informer-style cache of the objects releases own, fed by watches, so a pass reads memory, not the API server.

Why: a pass used to GET and LIST the release's Deployments, ReplicaSets,
pods and Services and read every object before applying it, about 15 API
requests per pass; at a 30 s interval 1,000 active releases would send some
500 requests/s.  With this cache, one LIST then one long WATCH per kind (per
served namespace, or cluster-wide) keeps a copy of every object labelled
``modelrelease.io/release``; a pass reads it and asks the API server only
for the release itself and its status write (``reconcile``).

What is kept: the raw JSON of each object, minus ``managedFields`` other
than the operator's own (``Kube.apply`` needs them for the replicas handover),
so 1,000 releases cost tens of megabytes, not hundreds.  Objects are turned
into the kubernetes client's typed models only when read, so a reader sees
the same types an API read returns.  HorizontalPodAutoscalers are kept
unfiltered (they carry no release label; ``Kube.autoscaled_deployments``).
The user's HTTPRoutes and VirtualServices are kept once a router has
labelled them with their release; where their CRD is not installed, that
kind is treated like a forbidden one (checked again every minute).

When the cache is not trusted, callers go to the API server as before:

- a kind is *ready* only after its first LIST in that namespace succeeded;
  until then (start-up) and whenever the list is forbidden (RBAC that
  predates the cache), ``Kube`` reads through the API;
- an object a reader needs and the cache does not hold (a user's unlabelled
  Service under a release's name) is read from the API, so ownership
  conflicts are still found (``Kube.read_object``);
- a watch that ends is resumed from the last resourceVersion seen; one the
  API server has expired (410 Gone) starts over with a LIST that replaces
  what was kept, so deletions missed meanwhile are dropped.

Staleness is bounded by the watch's latency (milliseconds): a pass deciding
on a slightly old copy decides again when the change arrives, because the
cache itself wakes the release once it has stored a change of one of its
Deployments, Services or ConfigMaps (``runner``; kopf's own watches also
wake it, possibly before the cache has the change, and the scheduler
coalesces the two).  Writes never depend on the cache alone being
right: status patches carry the resourceVersion of the release as read from
the API server (``reconcile``), and applies are server-side applies that
are skipped only when the cached object already holds what would be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease.kube.manifests import LABEL_RELEASE
from modelrelease.metrics import API_REQUESTS, CACHED_OBJECTS

log = logging.getLogger("modelrelease.cache")

Raw = dict[str, Any]
Key = tuple[str, str]
LISTED = "LISTED"
"""The event type listeners get for each object of a (re)list: present, not necessarily changed."""
KEPT_MANAGERS = frozenset({"modelrelease-operator", "modelrelease-operator-handover"})
"""managedFields entries kept in the cache (kube.client's FIELD_MANAGER and HANDOVER_MANAGER)."""
WATCH_SECONDS = 290
"""How long one WATCH request runs before it is renewed from the last resourceVersion (the server caps it)."""
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
FORBIDDEN_RETRY = 60.0
"""Seconds before listing a kind again that RBAC forbade (the Role may be updated under a running operator)."""


@dataclass(frozen=True)
class Kind:
    """One watched kind: its typed model and its filter (None: every object of the kind).

    A custom resource has no typed model (None): readers get its JSON, as
    ``CustomObjectsApi`` returns it; its listers are in ``listers``.
    """

    name: str
    model: str | None
    selector: str | None = LABEL_RELEASE


KINDS: tuple[Kind, ...] = (
    Kind("Deployment", "V1Deployment"),
    Kind("ReplicaSet", "V1ReplicaSet"),
    Kind("Pod", "V1Pod"),
    Kind("Service", "V1Service"),
    Kind("ConfigMap", "V1ConfigMap"),
    Kind("HorizontalPodAutoscaler", "V2HorizontalPodAutoscaler", selector=None),
    # The user's routes the gatewayApi and istio routers edit, once labelled with their release (the
    # router's first write labels them; until then a router reads them from the API server).
    Kind("HTTPRoute", None),
    Kind("VirtualService", None),
)


def _http_route_listers(custom: client.CustomObjectsApi) -> tuple[Any, Any]:
    # Group and plural spelled out in each call, so the chart's RBAC test can read which rule a call needs.
    def in_namespace(namespace: str, **options: Any) -> Any:
        return custom.list_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", **options
        )

    def everywhere(**options: Any) -> Any:
        return custom.list_cluster_custom_object("gateway.networking.k8s.io", "v1", "httproutes", **options)

    return in_namespace, everywhere


def _virtual_service_listers(custom: client.CustomObjectsApi) -> tuple[Any, Any]:
    def in_namespace(namespace: str, **options: Any) -> Any:
        return custom.list_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, "virtualservices", **options
        )

    def everywhere(**options: Any) -> Any:
        return custom.list_cluster_custom_object("networking.istio.io", "v1", "virtualservices", **options)

    return in_namespace, everywhere


def listers(api_client: client.ApiClient) -> dict[str, tuple[Any, Any]]:
    """Per kind: the API's list method in one namespace, and across all of them (both also watch)."""
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    return {
        "HTTPRoute": _http_route_listers(custom),
        "VirtualService": _virtual_service_listers(custom),
        "Deployment": (apps.list_namespaced_deployment, apps.list_deployment_for_all_namespaces),
        "ReplicaSet": (apps.list_namespaced_replica_set, apps.list_replica_set_for_all_namespaces),
        "Pod": (core.list_namespaced_pod, core.list_pod_for_all_namespaces),
        "Service": (core.list_namespaced_service, core.list_service_for_all_namespaces),
        "ConfigMap": (core.list_namespaced_config_map, core.list_config_map_for_all_namespaces),
        "HorizontalPodAutoscaler": (
            autoscaling.list_namespaced_horizontal_pod_autoscaler,
            autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
        ),
    }


def _raise_for_status(response: Any) -> None:
    """What the client does for a preloaded answer: an unpreloaded one (a stream) comes back whatever its status."""
    if not 200 <= response.status <= 299:
        raise ApiException(status=response.status, reason=str(response.reason))


def slim(raw: Raw) -> Raw:
    """``raw`` without the managedFields of other managers (the bulk of most objects' metadata)."""
    metadata = raw.get("metadata") or {}
    managed = metadata.get("managedFields")
    if managed:
        kept = [entry for entry in managed if entry.get("manager") in KEPT_MANAGERS]
        raw = {**raw, "metadata": {**metadata, "managedFields": kept or None}}
    return raw


def release_of(raw: Raw) -> tuple[str, str] | None:
    """(namespace, release) of an object labelled with its release, else None."""
    metadata = raw.get("metadata") or {}
    release = (metadata.get("labels") or {}).get(LABEL_RELEASE)
    namespace = metadata.get("namespace")
    return (str(namespace), str(release)) if release and namespace else None


def matches(labels: Mapping[str, str] | None, selector: Mapping[str, str]) -> bool:
    return all((labels or {}).get(key) == value for key, value in selector.items())


class Store:
    """The objects of one kind: by (namespace, name), indexed by (namespace, release label)."""

    def __init__(self) -> None:
        self.objects: dict[Key, Raw] = {}
        self._by_release: dict[Key, set[str]] = {}
        self.ready: set[str | None] = set()
        """Namespaces (None: all of them) whose first LIST succeeded."""

    def put(self, raw: Raw) -> None:
        metadata = raw["metadata"]
        key = (str(metadata.get("namespace") or ""), str(metadata["name"]))
        self.remove(key)
        self.objects[key] = slim(raw)
        release = (metadata.get("labels") or {}).get(LABEL_RELEASE)
        if release is not None:
            self._by_release.setdefault((key[0], release), set()).add(key[1])

    def remove(self, key: Key) -> Raw | None:
        old = self.objects.pop(key, None)
        if old is not None:
            release = ((old.get("metadata") or {}).get("labels") or {}).get(LABEL_RELEASE)
            index = (key[0], str(release))
            names = self._by_release.get(index) if release is not None else None
            if names is not None:
                names.discard(key[1])
                if not names:
                    del self._by_release[index]
        return old

    def replace(self, namespace: str | None, items: Iterable[Raw]) -> list[Raw]:
        """Everything in ``namespace`` (None: everywhere) becomes ``items``; returns the objects that went."""
        gone = [key for key in self.objects if namespace is None or key[0] == namespace]
        fresh = list(items)
        seen = {(str(i["metadata"].get("namespace") or ""), str(i["metadata"]["name"])) for i in fresh}
        removed = [raw for key in gone if key not in seen and (raw := self.remove(key)) is not None]
        for raw in fresh:
            self.put(raw)
        return removed

    def is_ready(self, namespace: str) -> bool:
        return None in self.ready or namespace in self.ready

    def select(self, namespace: str, selector: Mapping[str, str]) -> list[Raw]:
        release = selector.get(LABEL_RELEASE)
        if release is not None:
            names = sorted(self._by_release.get((namespace, release), ()))
            candidates = [self.objects[(namespace, name)] for name in names]
        else:
            candidates = [raw for (ns, _), raw in sorted(self.objects.items()) if ns == namespace]
        return [raw for raw in candidates if matches((raw.get("metadata") or {}).get("labels"), selector)]


class ObjectCache:
    """Lists and watches each ``Kind`` in ``namespaces`` (empty: cluster-wide, filtered by ``serves``)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespaces: Iterable[str] = (),
        serves: Callable[[str], bool] = lambda _: True,
        kinds: Iterable[Kind] = KINDS,
    ) -> None:
        self._api_client = api_client
        self._namespaces = tuple(namespaces)
        self._serves = serves
        self._kinds = {kind.name: kind for kind in kinds}
        self._stores = {name: Store() for name in self._kinds}
        self._forbidden: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[Callable[[str, str, Raw], None]] = []
        self._listers = listers(api_client)

    # --- reading ------------------------------------------------------------------------------------------------

    def ready(self, kind: str, namespace: str) -> bool:
        """Whether reads of ``kind`` in ``namespace`` can be answered from memory."""
        store = self._stores.get(kind)
        return store is not None and store.is_ready(namespace)

    def forbidden(self, kind: str) -> bool:
        """Whether listing ``kind`` was refused (RBAC, or its CRD is not installed): the caller then knows none."""
        return kind in self._forbidden

    def get_raw(self, kind: str, namespace: str, name: str) -> Raw | None:
        return self._stores[kind].objects.get((namespace, name))

    def get(self, kind: str, namespace: str, name: str) -> Any | None:
        """The object as the typed model an API read returns, or None when the cache does not hold it."""
        raw = self.get_raw(kind, namespace, name)
        return None if raw is None else self._typed(kind, raw)

    def select(self, kind: str, namespace: str, selector: Mapping[str, str]) -> list[Any]:
        return [self._typed(kind, raw) for raw in self._stores[kind].select(namespace, selector)]

    def count(self, kind: str) -> int:
        return len(self._stores[kind].objects)

    def on_change(self, listener: Callable[[str, str, Raw], None]) -> None:
        """Call ``listener(event type, kind, object)`` for every change seen (after it is stored).

        The type is the watch's (ADDED, MODIFIED, DELETED), or ``LISTED`` for each object of a (re)list.
        """
        self._listeners.append(listener)

    def _typed(self, kind: str, raw: Raw) -> Any:
        model = self._kinds[kind].model
        if model is None:
            return copy.deepcopy(raw)  # a reader may edit what it got; the cache's copy must stay as stored
        deserialize: Any = getattr(self._api_client, "_ApiClient__deserialize")  # noqa: B009  (no public form)
        return deserialize(raw, model)

    # --- feeding ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        scopes: tuple[str | None, ...] = self._namespaces or (None,)
        for kind in self._kinds.values():
            for namespace in scopes:
                where = namespace or "all namespaces"
                self._tasks.append(asyncio.create_task(self._run(kind, namespace), name=f"cache {kind.name} {where}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until every kind's first LIST is done (or forbidden); False if ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        scopes: tuple[str | None, ...] = self._namespaces or (None,)
        while loop.time() < deadline:
            if all(
                name in self._forbidden or all(ns in store.ready for ns in scopes)
                for name, store in self._stores.items()
            ):
                return True
            await asyncio.sleep(0.05)
        return False

    async def _run(self, kind: Kind, namespace: str | None) -> None:
        failures = 0
        resource_version: str | None = None
        store = self._stores[kind.name]
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._list(kind, namespace, store)
                    self._forbidden.discard(kind.name)
                resource_version = await self._watch(kind, namespace, store, resource_version)
                failures = 0
            except asyncio.CancelledError:
                raise
            except ApiException as error:
                if error.status == 410:  # expired: list again, replacing what is kept
                    resource_version = None
                    continue
                if error.status in (403, 404):  # 404: a route kind whose CRD is not installed (no mesh here)
                    self._forbidden.add(kind.name)
                    store.ready.discard(namespace)
                    refused = "forbidden" if error.status == 403 else "not served (no CRD)"
                    log.warning("cache: listing %s is %s; reading them from the API server", kind.name, refused)
                    await asyncio.sleep(FORBIDDEN_RETRY)
                    continue
                failures += 1
                log.warning("cache: %s watch failed (%s %s); retrying", kind.name, error.status, error.reason)
            except Exception as error:  # network trouble, a line the stream cut: resume after a pause
                failures += 1
                log.warning("cache: %s watch failed (%s: %s); retrying", kind.name, type(error).__name__, error)
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1] if failures else 0)

    def _lister(self, kind: Kind, namespace: str | None) -> tuple[Any, tuple[Any, ...]]:
        in_namespace, everywhere = self._listers[kind.name]
        if namespace is None:
            return everywhere, ()
        return in_namespace, (namespace,)

    def _options(self, kind: Kind) -> dict[str, Any]:
        return {"label_selector": kind.selector} if kind.selector else {}

    async def _list(self, kind: Kind, namespace: str | None, store: Store) -> str:
        lister, args = self._lister(kind, namespace)
        API_REQUESTS.labels(method="LIST").inc()
        response = await lister(*args, **self._options(kind), _preload_content=False)
        try:
            _raise_for_status(response)
            body = json.loads(await response.read())
        finally:
            response.release()
        items = [item for item in body.get("items") or [] if self._wanted(item)]
        # A list's items carry no kind; the typed models do not need it.
        removed = store.replace(namespace, items)
        store.ready.add(namespace)
        CACHED_OBJECTS.labels(kind=kind.name).set(len(store.objects))
        for raw in items:
            self._tell(LISTED, kind.name, raw)
        for raw in removed:
            self._tell("DELETED", kind.name, raw)
        return str(body["metadata"]["resourceVersion"])

    def _wanted(self, raw: Raw) -> bool:
        namespace = str((raw.get("metadata") or {}).get("namespace") or "")
        return not namespace or self._serves(namespace)

    async def _watch(self, kind: Kind, namespace: str | None, store: Store, resource_version: str) -> str:
        """One WATCH from ``resource_version``; returns the last version seen when the server ends it."""
        lister, args = self._lister(kind, namespace)
        API_REQUESTS.labels(method="WATCH").inc()
        response = await lister(
            *args,
            **self._options(kind),
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=WATCH_SECONDS + 30,
            _preload_content=False,
        )
        try:
            _raise_for_status(response)
            while True:
                line = await response.content.readline()
                if not line:
                    return resource_version
                event = json.loads(line)
                kind_of_event = event.get("type")
                raw = event.get("object") or {}
                if kind_of_event == "ERROR":
                    raise ApiException(status=int(raw.get("code") or 500), reason=str(raw.get("message")))
                resource_version = str((raw.get("metadata") or {}).get("resourceVersion") or resource_version)
                if kind_of_event == "BOOKMARK" or not self._wanted(raw):
                    continue
                if kind_of_event == "DELETED":
                    metadata = raw["metadata"]
                    store.remove((str(metadata.get("namespace") or ""), str(metadata["name"])))
                else:
                    store.put(raw)
                CACHED_OBJECTS.labels(kind=kind.name).set(len(store.objects))
                self._tell(str(kind_of_event), kind.name, raw)
        finally:
            response.release()

    def _tell(self, event_type: str, kind: str, raw: Raw) -> None:
        for listener in self._listeners:
            try:
                listener(event_type, kind, raw)
            except Exception:
                log.exception("cache listener failed on %s %s", event_type, kind)
