"""What a chaos trial watches, through API server and etcd restarts: the release, its Deployments, its traffic.

Why a module of its own: a trial's observers must outlive the faults it
injects.  A watch that dies when the API server restarts checks nothing
afterwards; traffic that stops when the API server is away makes Prometheus
see a gap that no user of a real cluster would cause (kube-proxy keeps its
rules).  So ``Recorder`` resumes its watch and re-lists when it must,
``ReleaseWatch`` fires fault triggers on the release's status changes from
its watch thread (at once, while the operator's pass is still running), and
``traffic`` keeps sending to the endpoints last known.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from devstack import chaos, scenario
from devstack.testing import Cluster, wait_for

TERMINAL = scenario.TERMINAL_PHASES


# ---- watching the API server through its own restarts ------------------------------------------------------------


class Recorder:
    """A list+watch in a thread that survives API server and etcd restarts.

    After a broken connection it resumes from the last resourceVersion, and
    re-lists when that is gone (410); ``gaps`` counts the re-lists, where
    changes in between may have been missed.  ``on_change`` gets every
    object by name after each change, and the moment it was seen.
    """

    def __init__(
        self,
        handle: Cluster,
        call: Callable[[Any], Callable[..., Any]],
        on_change: Callable[[dict[str, dict[str, Any]], float], None],
    ) -> None:
        self._handle = handle
        self._call = call
        self._on_change = on_change
        self.gaps = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-recorder", daemon=True)
        self._listed = threading.Event()

    def __enter__(self) -> Recorder:
        self._thread.start()
        if not self._listed.wait(30):
            raise RuntimeError("the recorder could not list within 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        list_call = self._call(self._handle.api_client())
        objects: dict[str, dict[str, Any]] = {}
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    listed = json.loads(list_call(_preload_content=False, _request_timeout=10).data)
                    objects = {o["metadata"]["name"]: o for o in listed.get("items") or []}
                    version = str(listed["metadata"]["resourceVersion"])
                    self._on_change(objects, time.time())
                    self._listed.set()
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    list_call, resource_version=version, timeout_seconds=5, _request_timeout=15
                ):
                    raw = event["raw_object"]
                    if event["type"] == "ERROR":
                        raise ApiException(status=int(raw.get("code") or 500), reason=str(raw.get("message")))
                    version = str(raw["metadata"]["resourceVersion"])
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "DELETED":
                        objects.pop(raw["metadata"]["name"], None)
                    else:
                        objects[raw["metadata"]["name"]] = raw
                    self._on_change(objects, time.time())
                    if self._stop.is_set():
                        return
            except ApiException as error:
                if error.status == 410:
                    version = None
                    self.gaps += 1
                else:
                    self.errors += 1
                    self._stop.wait(0.2)
            except Exception:  # the API server is away (restarted): try again shortly
                self.errors += 1
                self._stop.wait(0.2)


def deployments_recorder(
    handle: Cluster, namespace: str, release: str
) -> tuple[Recorder, list[chaos.DeploymentSnapshot]]:
    from kubernetes import client

    snapshots: list[chaos.DeploymentSnapshot] = []

    def call(api_client: Any) -> Callable[..., Any]:
        apps = client.AppsV1Api(api_client)
        return functools.partial(
            apps.list_namespaced_deployment, namespace, label_selector=f"modelrelease.io/release={release}"
        )

    def on_change(objects: dict[str, dict[str, Any]], at: float) -> None:
        views = tuple(chaos.deployment_view(o) for _, o in sorted(objects.items()))
        snapshots.append(chaos.DeploymentSnapshot(at, views))

    return Recorder(handle, call, on_change), snapshots


@dataclass(frozen=True)
class ReleaseView:
    at: float
    phase: str | None
    stable: int | None
    candidate: int | None
    stage: str | None
    passed: int
    history: int
    digest: str


def release_view(obj: Mapping[str, Any], at: float) -> ReleaseView:
    status = obj.get("status") or {}
    return ReleaseView(
        at=at,
        phase=status.get("phase"),
        stable=status.get("stableVersion"),
        candidate=status.get("candidateVersion"),
        stage=(status.get("stage") or {}).get("name"),
        passed=int((status.get("analysis") or {}).get("passed") or 0),
        history=len(status.get("history") or []),
        digest=json.dumps(status, sort_keys=True),
    )


class Trigger:
    """Fires ``action`` (in the watch thread, so at once) on the n-th status change that ``when`` accepts."""

    def __init__(self, changes: int, when: Callable[[ReleaseView], bool], action: Callable[[], Any]) -> None:
        self.remaining = changes
        self.when = when
        self.action = action
        self.fired = threading.Event()
        self.at: float | None = None
        self.view: ReleaseView | None = None
        self.error: BaseException | None = None

    def offer(self, view: ReleaseView) -> None:
        if self.fired.is_set() or view.phase in TERMINAL or not self.when(view):
            return
        self.remaining -= 1
        if self.remaining > 0:
            return
        try:
            self.action()
        except BaseException as error:  # reported by the trial, which waits on .fired
            self.error = error
        self.at, self.view = time.time(), view
        self.fired.set()


class ReleaseWatch:
    """The release's status changes as seen, the triggers armed on them, and when the rollout ended."""

    def __init__(self, handle: Cluster, namespace: str, name: str, history_start: int) -> None:
        from kubernetes import client

        self.views: list[ReleaseView] = []
        self.history_start = history_start
        self._triggers: list[Trigger] = []
        self._lock = threading.Lock()

        def call(api_client: Any) -> Callable[..., Any]:
            api = client.CustomObjectsApi(api_client)
            return functools.partial(
                api.list_namespaced_custom_object,
                "modelrelease.io",
                "v1alpha1",
                namespace,
                "modelreleases",
                field_selector=f"metadata.name={name}",
            )

        self.recorder = Recorder(handle, call, lambda objects, at: self._seen(objects.get(name), at))

    def __enter__(self) -> ReleaseWatch:
        self.recorder.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.__exit__(*exc)

    def _seen(self, obj: dict[str, Any] | None, at: float) -> None:
        if obj is None:
            return
        view = release_view(obj, at)
        with self._lock:
            if self.views and self.views[-1].digest == view.digest:
                return
            self.views.append(view)
            triggers = list(self._triggers)
        for trigger in triggers:
            trigger.offer(view)

    def arm(
        self, changes: int, action: Callable[[], Any], when: Callable[[ReleaseView], bool] = lambda _: True
    ) -> Trigger:
        trigger = Trigger(changes, when, action)
        with self._lock:
            self._triggers.append(trigger)
        return trigger

    def ended_at(self) -> float | None:
        """When the rollout's verdict was first seen (a terminal phase with a history entry added), else None."""
        for view in list(self.views):
            if view.phase in TERMINAL and view.history > self.history_start and view.candidate is None:
                return view.at
        return None

    def wait(self, trigger: Trigger, timeout: float) -> bool:
        """True once the trigger fired; False if the rollout ended first."""
        fired = wait_for(lambda: trigger.fired.is_set() or self.ended_at() is not None, timeout, interval=0.05)
        if trigger.error is not None:
            raise RuntimeError(f"fault injection failed: {trigger.error!r}") from trigger.error
        return bool(fired) and trigger.fired.is_set()

    def status_changes_since(self, moment: float) -> int:
        return sum(1 for v in list(self.views) if v.at > moment)


# ---- traffic that outlives API server restarts --------------------------------------------------------------------


class LastKnownEndpoints:
    """A Service's endpoints refreshed in the background; while the API server is away, the last ones known.

    That is what kube-proxy does: its rules stay in place when the API
    server restarts.  The generator never blocks on the API.
    """

    def __init__(self, inner: Any, interval: float = 0.5) -> None:
        self._inner = inner
        self._interval = interval
        self._known: dict[str, list[Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="chaos-endpoints", daemon=True)
        self._services: set[str] = set()
        self._lock = threading.Lock()

    def endpoints(self, service: str) -> list[Any]:
        with self._lock:
            if service not in self._services:
                self._services.add(service)
                self._known[service] = self._inner.endpoints(service)
                if not self._thread.is_alive():
                    self._thread.start()
            return list(self._known[service])

    def _refresh(self) -> None:
        while not self._stop.wait(self._interval):
            for service in list(self._services):
                with contextlib.suppress(Exception):
                    found = self._inner.endpoints(service)
                    with self._lock:
                        self._known[service] = found

    def close(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def traffic(handle: Cluster, namespace: str, service: str, seed: int, rate: float, seconds: float) -> Iterator[Any]:
    """Labelled gRPC traffic to ``service``'s endpoints (last known while the API is away), scraped by Prometheus."""
    from devstack.traffic import TrafficConfig, running
    from devstack.traffic.endpoints import EndpointSliceSource
    from devstack.traffic.kube import api_client
    from devstack.traffic.routing import ServiceResolver

    source = LastKnownEndpoints(EndpointSliceSource(api_client(handle.kubeconfig), namespace, 8500, ttl=0.0))
    config = TrafficConfig(rate=rate, duration=seconds, seed=seed)
    try:
        with running(
            config,
            ServiceResolver(source, service),
            register_prometheus=handle.state_dir,
            job=f"traffic-{namespace}",
            scraped_by=handle.prometheus_url,
        ) as generator:
            yield generator
    finally:
        source.close()
