"""The data-plane stand-in: which endpoint answers a request, and which get a mirrored copy.

One small interface, ``Resolver``, with one implementation per data plane the
operator can drive: plain Services (kube-proxy spreads requests evenly over
ready endpoints, so traffic follows the replica ratio), a Gateway API
HTTPRoute (rule precedence, header matches, backendRef weights, RequestMirror)
and an Istio VirtualService (first matching http route, destination weights,
mirror and mirrorPercentage).  The route semantics are pure functions over the
objects as dicts, so they are unit-tested without a cluster; only fetching the
objects touches the API.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from devstack.traffic.endpoints import Endpoint, EndpointSource

# gRPC Predict is an HTTP/2 POST to this path: what an HTTPRoute's path match or
# a VirtualService's uri match sees.
PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict"


class NoRoute(LookupError):
    """Nothing would answer this request (no matching rule, or no ready endpoint): the caller sees UNAVAILABLE."""


@dataclass(frozen=True)
class Decision:
    primary: Endpoint
    mirrors: tuple[Endpoint, ...] = ()


class Resolver(Protocol):
    def resolve(self, headers: Mapping[str, str], rng: random.Random) -> Decision:
        """Pick the endpoint for one request (and its mirrors); raise NoRoute when none would answer."""
        ...


def pick_endpoint(source: EndpointSource, service: str, rng: random.Random) -> Endpoint:
    """kube-proxy's choice: uniform over ready endpoints, hence a split in proportion to replicas."""
    endpoints = source.endpoints(service)
    if not endpoints:
        raise NoRoute(f"service {service!r} has no ready endpoints")
    return endpoints[rng.randrange(len(endpoints))]


def pick_weighted(choices: Sequence[tuple[str, float]], rng: random.Random) -> str:
    total = sum(max(weight, 0.0) for _, weight in choices)
    if total <= 0:
        raise NoRoute("every backend has weight 0")
    point = rng.random() * total
    for name, weight in choices:
        point -= max(weight, 0.0)
        if point < 0:
            return name
    return choices[-1][0]


def pick_mirrors(
    source: EndpointSource, mirrors: Sequence[tuple[str, float]], rng: random.Random
) -> tuple[Endpoint, ...]:
    """Endpoints that get a copy; a mirror with no ready endpoint is skipped, never failing the request itself."""
    chosen = []
    for service, share in mirrors:
        if rng.random() < share:
            try:
                chosen.append(pick_endpoint(source, service, rng))
            except NoRoute:
                continue
    return tuple(chosen)


class ServiceResolver:
    """Traffic to a plain Service: what the ``replicas`` router relies on."""

    def __init__(self, source: EndpointSource, service: str) -> None:
        self._source = source
        self._service = service

    def resolve(self, headers: Mapping[str, str], rng: random.Random) -> Decision:
        return Decision(pick_endpoint(self._source, self._service, rng))


# --- Gateway API HTTPRoute ---------------------------------------------------------------------------------------


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _http_route_match_rank(match: Mapping[str, Any], headers: Mapping[str, str], path: str) -> tuple[int, ...] | None:
    """None if ``match`` does not match; otherwise a key where larger means higher Gateway API precedence."""
    path_match = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind, value = path_match.get("type", "PathPrefix"), path_match.get("value", "/")
    if kind == "Exact":
        if path != value:
            return None
        path_rank = (2, len(value))
    elif kind == "PathPrefix":
        prefix = value.rstrip("/")
        if not (path == prefix or path.startswith(prefix + "/") or prefix == ""):
            return None
        path_rank = (1, len(value))
    elif kind == "RegularExpression":
        if re.fullmatch(value, path) is None:
            return None
        path_rank = (0, len(value))
    else:
        return None
    method = match.get("method")
    if method and method.upper() != "POST":
        return None
    header_matches = match.get("headers") or []
    lowered = _lower(headers)
    for header in header_matches:
        actual = lowered.get(header["name"].lower())
        if actual is None:
            return None
        if header.get("type", "Exact") == "RegularExpression":
            if re.fullmatch(header["value"], actual) is None:
                return None
        elif actual != header["value"]:
            return None
    # A gRPC request carries no query string, so a match that needs query parameters never matches.
    if match.get("queryParams"):
        return None
    return (*path_rank, 1 if method else 0, len(header_matches))


def select_http_route_rule(route: Mapping[str, Any], headers: Mapping[str, str], path: str = PREDICT_PATH) -> Any:
    """The rule that takes this request under Gateway API precedence (ties go to the earlier rule); None if none."""
    best: tuple[tuple[int, ...], int] | None = None
    best_rule = None
    for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        for match in rule.get("matches") or [{}]:
            rank = _http_route_match_rank(match, headers, path)
            if rank is None:
                continue
            key = (rank, -index)
            if best is None or key > best:
                best, best_rule = key, rule
    return best_rule


def _mirror_share(mirror: Mapping[str, Any]) -> float:
    if "percent" in mirror:
        return float(mirror["percent"]) / 100.0
    fraction = mirror.get("fraction")
    if fraction:
        return float(fraction["numerator"]) / float(fraction.get("denominator", 100))
    return 1.0


def http_route_mirrors(rule: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(service, share) of every RequestMirror filter on the rule."""
    mirrors = []
    for route_filter in rule.get("filters") or []:
        if route_filter.get("type") == "RequestMirror":
            mirror = route_filter.get("requestMirror") or {}
            mirrors.append((mirror["backendRef"]["name"], _mirror_share(mirror)))
    return mirrors


class HTTPRouteResolver:
    """Follows an HTTPRoute as a Gateway implementation would; ``get_route`` returns it as a dict (cached)."""

    def __init__(self, source: EndpointSource, get_route: Callable[[], Mapping[str, Any] | None]) -> None:
        self._source = source
        self._get_route = get_route

    def resolve(self, headers: Mapping[str, str], rng: random.Random) -> Decision:
        route = self._get_route()
        if route is None:
            raise NoRoute("the HTTPRoute does not exist")
        rule = select_http_route_rule(route, headers)
        if rule is None:
            raise NoRoute("no HTTPRoute rule matches the request (a Gateway answers 404)")
        refs = rule.get("backendRefs") or []
        if not refs:
            raise NoRoute("the matching HTTPRoute rule has no backendRefs (a Gateway answers 500)")
        service = pick_weighted([(ref["name"], float(ref.get("weight", 1))) for ref in refs], rng)
        primary = pick_endpoint(self._source, service, rng)
        return Decision(primary, pick_mirrors(self._source, http_route_mirrors(rule), rng))


class GatewayResolver:
    """User traffic through a real Gateway (Traefik on devstack): it does the weights and header matches.

    The one thing the generator still does itself: Traefik implements no
    ``RequestMirror`` filter (a rule that has one answers 500), so a request
    whose rule carries one is served here as ``HTTPRouteResolver`` would,
    the answer from the rule's backendRefs and a copy to the mirror.  Every
    other request goes to the gateway, and the version that answered is read
    from the answer itself.
    """

    def __init__(
        self, gateway: Endpoint, source: EndpointSource, get_route: Callable[[], Mapping[str, Any] | None]
    ) -> None:
        self._gateway = gateway
        self._get_route = get_route
        self._fallback = HTTPRouteResolver(source, get_route)

    def resolve(self, headers: Mapping[str, str], rng: random.Random) -> Decision:
        route = self._get_route()
        rule = select_http_route_rule(route, headers) if route is not None else None
        if rule is not None and http_route_mirrors(rule):
            return self._fallback.resolve(headers, rng)
        return Decision(self._gateway)


# --- Istio VirtualService ----------------------------------------------------------------------------------------


def _string_match(rule: Mapping[str, Any], actual: str | None) -> bool:
    if actual is None:
        return False
    if "exact" in rule:
        return actual == str(rule["exact"])
    if "prefix" in rule:
        return actual.startswith(str(rule["prefix"]))
    if "regex" in rule:
        return re.fullmatch(rule["regex"], actual) is not None
    return True  # an empty StringMatch only asks for presence


def _virtual_service_match(match: Mapping[str, Any], headers: Mapping[str, str], path: str) -> bool:
    lowered = _lower(headers)
    if "uri" in match and not _string_match(match["uri"], path):
        return False
    if "method" in match and not _string_match(match["method"], "POST"):
        return False
    for name, rule in (match.get("headers") or {}).items():
        if not _string_match(rule, lowered.get(name.lower())):
            return False
    for name, rule in (match.get("withoutHeaders") or {}).items():
        if _string_match(rule, lowered.get(name.lower())):
            return False
    return not bool(match.get("queryParams"))


def select_virtual_service_route(
    virtual_service: Mapping[str, Any], headers: Mapping[str, str], path: str = PREDICT_PATH
) -> Any:
    """Istio evaluates ``http`` routes in order; the first whose matches (any of them) fit wins."""
    for http in (virtual_service.get("spec") or {}).get("http") or []:
        matches = http.get("match") or [{}]
        if any(_virtual_service_match(match, headers, path) for match in matches):
            return http
    return None


def service_of_host(host: str) -> str:
    """``digits-canary``, ``digits-canary.ml`` and ``digits-canary.ml.svc.cluster.local`` all name one Service."""
    return host.split(".", 1)[0]


def _destination_service(destination: Mapping[str, Any]) -> str:
    if destination.get("subset"):
        raise NoRoute(
            f"destination subset {destination['subset']!r}: subsets need a DestinationRule, which the "
            "devstack data plane does not read; route to per-version Services instead"
        )
    return service_of_host(destination["host"])


def virtual_service_mirrors(http: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(service, share) of ``mirror`` + ``mirrorPercentage`` and of the newer ``mirrors`` list."""
    mirrors = []
    if http.get("mirror"):
        percentage = (http.get("mirrorPercentage") or {}).get("value", 100.0)
        mirrors.append((_destination_service(http["mirror"]), float(percentage) / 100.0))
    for mirror in http.get("mirrors") or []:
        percentage = (mirror.get("percentage") or {}).get("value", 100.0)
        mirrors.append((_destination_service(mirror["destination"]), float(percentage) / 100.0))
    return mirrors


class VirtualServiceResolver:
    """Follows an Istio VirtualService as the sidecar would; ``get_virtual_service`` returns it as a dict."""

    def __init__(self, source: EndpointSource, get_virtual_service: Callable[[], Mapping[str, Any] | None]) -> None:
        self._source = source
        self._get = get_virtual_service

    def resolve(self, headers: Mapping[str, str], rng: random.Random) -> Decision:
        virtual_service = self._get()
        if virtual_service is None:
            raise NoRoute("the VirtualService does not exist")
        http = select_virtual_service_route(virtual_service, headers)
        if http is None:
            raise NoRoute("no VirtualService http route matches the request (the sidecar answers 404)")
        routes = http.get("route") or []
        if not routes:
            raise NoRoute("the matching VirtualService route has no destinations")
        # A lone destination may omit its weight (100); otherwise omitted weights are 0.
        default_weight = 100.0 if len(routes) == 1 else 0.0
        service = pick_weighted(
            [
                (_destination_service(route["destination"]), float(route.get("weight", default_weight)))
                for route in routes
            ],
            rng,
        )
        primary = pick_endpoint(self._source, service, rng)
        return Decision(primary, pick_mirrors(self._source, virtual_service_mirrors(http), rng))
