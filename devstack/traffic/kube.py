"""Build a resolver from what exists in the cluster: an HTTPRoute, a VirtualService, or just the Service."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from devstack.traffic.endpoints import Cached, Endpoint, EndpointSliceSource, split_host_port
from devstack.traffic.routing import (
    GatewayResolver,
    HTTPRouteResolver,
    Resolver,
    ServiceResolver,
    VirtualServiceResolver,
)

RouterKind = Literal["auto", "replicas", "httproute", "virtualservice", "gateway"]
HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")
# Istio serves v1 since 1.22; older control planes only v1beta1.
VIRTUALSERVICE_VERSIONS = (
    ("networking.istio.io", "v1", "virtualservices"),
    ("networking.istio.io", "v1beta1", "virtualservices"),
)


def api_client(kubeconfig: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]


def _get_object(client: Any, group: str, version: str, plural: str, namespace: str, name: str) -> Any:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    try:
        return k8s.CustomObjectsApi(client).get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:  # no such object, or the CRD is not installed
            return None
        raise


def object_getter(
    client: Any, kinds: tuple[tuple[str, str, str], ...], namespace: str, name: str, ttl: float
) -> Callable[[], Mapping[str, Any] | None]:
    """A cached getter for a custom object that may not exist (yet); tries each group/version in turn."""

    def fetch() -> Any:
        for group, version, plural in kinds:
            found = _get_object(client, group, version, plural, namespace, name)
            if found is not None:
                return found
        return None

    cached = Cached(fetch, ttl)
    return cached.get


def resolver_for_service(
    kubeconfig: Path,
    namespace: str,
    service: str,
    port: int = 8500,
    router: RouterKind = "auto",
    route_name: str | None = None,
    ttl: float = 1.0,
    gateway: str | None = None,
) -> Resolver:
    """The data plane for ``service``: ``auto`` follows an HTTPRoute or VirtualService named ``route_name``
    (default: the Service's name) when one exists at start, else the Service's endpoints; ``gateway``
    sends through the Gateway listening at ``gateway`` (``host:port``), following the HTTPRoute only for
    what that gateway cannot do (mirroring)."""
    client = api_client(kubeconfig)
    source = EndpointSliceSource(client, namespace, port, ttl)
    name = route_name or service
    if router == "replicas":
        return ServiceResolver(source, service)
    httproute = object_getter(client, (HTTPROUTE,), namespace, name, ttl)
    if router == "gateway":
        if gateway is None:
            raise ValueError("router gateway needs the gateway's host:port")
        return GatewayResolver(Endpoint(*split_host_port(gateway), pod="gateway"), source, httproute)
    virtualservice = object_getter(client, VIRTUALSERVICE_VERSIONS, namespace, name, ttl)
    if router == "httproute" or (router == "auto" and httproute() is not None):
        return HTTPRouteResolver(source, httproute)
    if router == "virtualservice" or (router == "auto" and virtualservice() is not None):
        return VirtualServiceResolver(source, virtualservice)
    return ServiceResolver(source, service)
