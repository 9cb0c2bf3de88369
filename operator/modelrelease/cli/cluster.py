"""What the CLI reads from and writes to the cluster, as plain dicts.

Why the synchronous client: a command reads a handful of objects and exits,
and ``watch`` streams with one thread per watched kind; the operator's async
client and its fencing are for a long-running process.  Everything is
returned as the JSON the API server sent (``sanitize_for_serialization``),
so the views in ``view.py`` are pure functions of plain data, tested without
a cluster.

Why model states are asked over gRPC: ``status`` shows what each pod's TF
Serving reports (``GetModelStatus``), as the operator does; a pod that cannot
be reached from where the CLI runs shows ``unreachable``, never an error.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.kube.manifests import GRPC_PORT, LABEL_RELEASE, LABEL_VERSION

Obj = dict[str, Any]
MODEL_STATE_TIMEOUT = 1.5
DEBOUNCE = 0.2


class CliError(Exception):
    """A problem the user can act on: printed as one line, exit code 1."""


@dataclass(frozen=True)
class Snapshot:
    """Everything ``status`` shows about one release, read at one moment."""

    release: Obj
    deployments: list[Obj]
    pods: list[Obj]
    events: list[Obj]
    model_states: dict[str, str]
    """Pod name -> the state its TF Serving reports for the pod's version (or why it could not be asked)."""


class Cluster:
    """One API server, reached with a kubeconfig (or in-cluster), and the namespace commands default to."""

    def __init__(self, kubeconfig: Path | None = None, context: str | None = None) -> None:
        client, config = _untyped("kubernetes.client"), _untyped("kubernetes.config")

        try:
            if kubeconfig is None and context is None and _in_cluster():
                config.load_incluster_config()
                self.default_namespace = _in_cluster_namespace()
            else:
                # KUBECONFIG read now: the client library reads it once, when first imported.
                path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or None
                config.load_kube_config(config_file=path, context=context)
                _, active = config.list_kube_config_contexts(config_file=path)
                if context is not None:
                    contexts, _ = config.list_kube_config_contexts(config_file=path)
                    active = next((c for c in contexts if c["name"] == context), active)
                self.default_namespace = (active or {}).get("context", {}).get("namespace") or "default"
        except config.ConfigException as error:
            raise CliError(f"no cluster configured: {error}") from error
        self.api_client = client.ApiClient()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)

    def _plain(self, obj: Any) -> Any:
        return self.api_client.sanitize_for_serialization(obj)

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        from urllib3.exceptions import HTTPError

        ApiException = _untyped("kubernetes.client.exceptions").ApiException

        try:
            return call(*args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                raise CliError(f"{what} not found") from error
            reason = error.reason or ""
            raise CliError(f"{what}: the API server answered {error.status} {reason}".rstrip()) from error
        except HTTPError as error:
            raise CliError(f"{what}: cannot reach the API server: {error}") from error

    def list_releases(self, namespace: str | None) -> list[Obj]:
        if namespace is None:
            found = self._call("modelreleases", self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
        else:
            found = self._call(
                f"modelreleases in {namespace}",
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
            )
        items: list[Obj] = found.get("items", [])
        return items

    def get_release(self, namespace: str, name: str) -> Obj:
        found: Obj = self._call(
            f"modelrelease {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
        )
        return found

    def annotate(self, namespace: str, name: str, key: str, value: str) -> Obj:
        """Set one annotation with a merge patch of metadata only: spec is never touched."""
        body = {"metadata": {"annotations": {key: value}}}
        patched: Obj = self._call(
            f"modelrelease {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body,
        )
        return patched

    def snapshot(self, namespace: str, name: str, release: Obj | None = None, model_states: bool = True) -> Snapshot:
        release = release or self.get_release(namespace, name)
        selector = f"{LABEL_RELEASE}={name}"
        deployments = self._call(
            "deployments", self.apps.list_namespaced_deployment, namespace, label_selector=selector
        )
        pods = self._call("pods", self.core.list_namespaced_pod, namespace, label_selector=selector)
        events = self._call(
            "events",
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=ModelRelease",
        )
        pod_list: list[Obj] = self._plain(pods.items)
        model = release.get("spec", {}).get("model", {}).get("name", name)
        states = ask_model_states(model, pod_list) if model_states else {}
        return Snapshot(
            release=release,
            deployments=self._plain(deployments.items),
            pods=pod_list,
            events=self._plain(events.items),
            model_states=states,
        )

    def watch(self, namespace: str, name: str, stop: threading.Event, tick: float = 1.0) -> Iterator[set[str]]:
        """Yield which kinds changed (release, pods, deployments, events), from watches.

        One thread per kind streams a Kubernetes watch and puts the kind on a
        queue; a watch that ends (server timeout) is restarted from the last
        resourceVersion it saw.  Changes arriving together are yielded as one
        batch.  Nothing polls the API server: a quiet release yields only
        ``{"tick"}`` every ``tick`` seconds, for redrawing the stage's clock.
        """
        changes: queue.Queue[str] = queue.Queue()
        selector = f"{LABEL_RELEASE}={name}"
        sources: dict[str, tuple[Any, tuple[Any, ...], dict[str, str]]] = {
            "release": (
                self.custom.list_namespaced_custom_object,
                (GROUP, VERSION, namespace, PLURAL),
                {"field_selector": f"metadata.name={name}"},
            ),
            "deployments": (self.apps.list_namespaced_deployment, (namespace,), {"label_selector": selector}),
            "pods": (self.core.list_namespaced_pod, (namespace,), {"label_selector": selector}),
            "events": (
                self.core.list_namespaced_event,
                (namespace,),
                {"field_selector": f"involvedObject.name={name},involvedObject.kind=ModelRelease"},
            ),
        }
        for kind, (call, args, kwargs) in sources.items():
            thread = threading.Thread(
                target=_stream, args=(kind, call, args, kwargs, changes, stop), daemon=True, name=f"watch-{kind}"
            )
            thread.start()
        while not stop.is_set():
            try:
                batch = {changes.get(timeout=tick)}
            except queue.Empty:
                yield {"tick"}
                continue
            deadline = time.monotonic() + DEBOUNCE
            while (left := deadline - time.monotonic()) > 0:
                try:
                    batch.add(changes.get(timeout=left))
                except queue.Empty:
                    break
            yield batch


def _stream(
    kind: str,
    call: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, str],
    changes: queue.Queue[str],
    stop: threading.Event,
) -> None:
    watch = _untyped("kubernetes.watch")
    resource_version: str | None = None
    while not stop.is_set():
        watcher = watch.Watch()
        try:
            options: dict[str, Any] = dict(kwargs, timeout_seconds=60, allow_watch_bookmarks=True)
            if resource_version:
                options["resource_version"] = resource_version
            for event in watcher.stream(call, *args, **options):
                if stop.is_set():
                    break
                obj = event.get("object")
                version = _resource_version(obj)
                if version:
                    resource_version = version
                if event.get("type") != "BOOKMARK":
                    changes.put(kind)
        except Exception:  # a watch that broke (410 Gone, connection reset) restarts from a fresh list
            resource_version = None
            changes.put(kind)
            stop.wait(1.0)
        finally:
            watcher.stop()


def _untyped(module: str) -> Any:
    """The synchronous kubernetes client has no type hints; its modules are used as ``Any``, imported late."""
    import importlib

    return importlib.import_module(module)


def _resource_version(obj: Any) -> str | None:
    if isinstance(obj, dict):
        version = obj.get("metadata", {}).get("resourceVersion")
        return str(version) if version else None
    metadata = getattr(obj, "metadata", None)
    version = getattr(metadata, "resource_version", None)
    return str(version) if version else None


def ask_model_states(model: str, pods: list[Obj]) -> dict[str, str]:
    """GetModelStatus on every running pod (the version its label names), concurrently, with a short deadline."""
    targets: list[tuple[str, str, int]] = []
    for pod in pods:
        labels = pod.get("metadata", {}).get("labels", {}) or {}
        ip = (pod.get("status") or {}).get("podIP")
        version = labels.get(LABEL_VERSION, "")
        if ip and version.isdigit():
            targets.append((pod["metadata"]["name"], f"{ip}:{GRPC_PORT}", int(version)))
    if not targets:
        return {}
    return asyncio.run(_ask_all(model, targets))


async def _ask_all(model: str, targets: list[tuple[str, str, int]]) -> dict[str, str]:
    from modelrelease.serving.client import model_status

    async def one(address: str, version: int) -> str:
        try:
            state = await asyncio.wait_for(
                model_status(address, model, version, MODEL_STATE_TIMEOUT), MODEL_STATE_TIMEOUT + 0.5
            )
        except Exception as error:  # any failure to ask is shown, never raised
            return f"unreachable ({type(error).__name__})"
        if state.error_code != 0 and state.state == "UNKNOWN":
            return "unreachable"
        return state.state if state.error_code == 0 else f"{state.state}: {state.error_message}"

    answers = await asyncio.gather(*(one(address, version) for _, address, version in targets))
    return {name: answer for (name, _, _), answer in zip(targets, answers, strict=True)}


def _in_cluster() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def _in_cluster_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    try:
        return path.read_text().strip() or "default"
    except OSError:
        return "default"
