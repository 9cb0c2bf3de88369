"""Where requests may go: loopback endpoints only, and how a Service's ready endpoints are found.

The loopback rule lives in ``Endpoint`` itself, so no code path can build a
target outside 127.0.0.0/8 (or ::1) and send it traffic: devstack pods run on
loopback pod IPs, and anything else means a misconfigured kubeconfig pointing
at a real cluster.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

VERSION_LABEL = "modelrelease.io/version"


class NonLoopbackAddress(ValueError):
    """A target outside loopback: the traffic generator refuses to send to it."""


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback IP (or ``localhost``); raise NonLoopbackAddress otherwise."""
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise NonLoopbackAddress(
            f"refusing to send traffic to {host!r}: give a loopback IP (127.0.0.0/8 or ::1), not a hostname"
        ) from None
    if not address.is_loopback:
        raise NonLoopbackAddress(
            f"refusing to send traffic to {host}: the devstack traffic generator only talks to loopback "
            "addresses (127.0.0.0/8, ::1); is the kubeconfig pointing at a real cluster?"
        )
    return host


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Endpoint:
    """One serving process: a pod IP and the port its gRPC API listens on."""

    host: str
    port: int
    pod: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        require_loopback(self.host)

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def version(self) -> str:
        """The pod's declared version: what a failed request is attributed to (a success says its own)."""
        return self.labels.get(VERSION_LABEL, "")


class EndpointSource(Protocol):
    """Ready endpoints of a Service by name, in one namespace."""

    def endpoints(self, service: str) -> list[Endpoint]: ...


class StaticEndpoints:
    """A fixed Service -> endpoints map: for tests and for ``--target`` without a cluster."""

    def __init__(self, services: Mapping[str, list[Endpoint]]) -> None:
        self._services = dict(services)

    def endpoints(self, service: str) -> list[Endpoint]:
        return list(self._services.get(service, []))


class Cached:
    """A value re-fetched at most every ``ttl`` seconds: the data plane follows the API, a little behind."""

    def __init__(self, fetch: Callable[[], Any], ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._value: Any = None
        self._fetched_at: float | None = None

    def get(self) -> Any:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            self._value = self._fetch()
            self._fetched_at = now
        return self._value


def ready_endpoints(
    slices: list[dict[str, Any]], port: int, pod_labels: Mapping[str, Mapping[str, str]]
) -> list[Endpoint]:
    """Ready, non-terminating addresses of EndpointSlices (as dicts), as kube-proxy would program them.

    ``port`` is the pods' gRPC port: the generator talks to pods directly, as
    kube-proxy's DNAT would after picking one.
    """
    found: dict[str, Endpoint] = {}
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            # Per the EndpointSlice API, an unknown readiness (absent) is read as ready.
            if conditions.get("ready") is False or conditions.get("terminating") is True:
                continue
            pod = (endpoint.get("targetRef") or endpoint.get("target_ref") or {}).get("name", "")
            for address in endpoint.get("addresses") or []:
                found.setdefault(address, Endpoint(address, port, pod, dict(pod_labels.get(pod, {}))))
    return sorted(found.values(), key=lambda e: (e.host, e.port))


def endpoints_from_pods(selector: Mapping[str, str], pods: list[dict[str, Any]], port: int) -> list[Endpoint]:
    """What the EndpointSlice controller would publish for a Service with ``selector``: its Ready pods' IPs."""
    found = []
    for pod in pods:
        metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
        labels = metadata.get("labels") or {}
        if not selector or any(labels.get(key) != value for key, value in selector.items()):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP") and not metadata.get("deletionTimestamp"):
            found.append(Endpoint(status["podIP"], port, metadata.get("name", ""), dict(labels)))
    return sorted(found, key=lambda e: (e.host, e.port))


class EndpointSliceSource:
    """Reads a namespace's EndpointSlices (and the pods behind them) through the API, refreshed every ``ttl``.

    When a Service has no EndpointSlice with endpoints at all, the endpoints
    are computed from its selector and the pods' readiness, as the
    EndpointSlice controller computes them: an unpatched kube-apiserver refuses
    EndpointSlice addresses in 127.0.0.0/8, which is where devstack's pods live.
    """

    def __init__(self, api_client: Any, namespace: str, port: int, ttl: float = 1.0) -> None:
        from kubernetes import client

        self._discovery = client.DiscoveryV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._api_client = api_client
        self._namespace = namespace
        self._port = port
        self._ttl = ttl
        self._cache: dict[str, Cached] = {}

    def endpoints(self, service: str) -> list[Endpoint]:
        if service not in self._cache:
            self._cache[service] = Cached(lambda: self._fetch(service), self._ttl)
        endpoints: list[Endpoint] = self._cache[service].get()
        return endpoints

    def _fetch(self, service: str) -> list[Endpoint]:
        slices = self._discovery.list_namespaced_endpoint_slice(
            self._namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
        raw = [self._api_client.sanitize_for_serialization(item) for item in slices.items]
        pods = self._api_client.sanitize_for_serialization(self._core.list_namespaced_pod(self._namespace))
        items = pods.get("items") or []
        if any(s.get("endpoints") for s in raw):
            labels = {pod["metadata"]["name"]: pod["metadata"].get("labels") or {} for pod in items}
            return ready_endpoints(raw, self._port, labels)
        spec = self._core.read_namespaced_service(service, self._namespace).spec
        return endpoints_from_pods((spec.selector if spec else None) or {}, items, self._port)
