"""The data-plane stand-in's routing semantics, from router objects as dicts (no cluster)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from devstack.traffic.endpoints import (
    Endpoint,
    NonLoopbackAddress,
    StaticEndpoints,
    endpoints_from_pods,
    ready_endpoints,
)
from devstack.traffic.routing import (
    HTTPRouteResolver,
    NoRoute,
    Resolver,
    ServiceResolver,
    VirtualServiceResolver,
    select_http_route_rule,
    select_virtual_service_route,
)

SOURCE = StaticEndpoints(
    {
        "digits": [Endpoint("127.0.10.1", 8500), Endpoint("127.0.10.2", 8500), Endpoint("127.0.10.3", 8500)],
        "digits-stable": [Endpoint("127.0.10.1", 8500), Endpoint("127.0.10.2", 8500)],
        "digits-canary": [Endpoint("127.0.10.3", 8500)],
        "empty": [],
    }
)
CANARY = "127.0.10.3"


def canary_share(resolver: Resolver, headers: dict[str, str] | None = None, n: int = 4000) -> float:
    rng = random.Random(7)
    hits = sum(resolver.resolve(headers or {}, rng).primary.host == CANARY for _ in range(n))
    return hits / n


def mirror_share(resolver: Resolver, n: int = 4000) -> float:
    rng = random.Random(11)
    return sum(bool(resolver.resolve({}, rng).mirrors) for _ in range(n)) / n


def test_service_traffic_follows_the_replica_ratio() -> None:
    assert canary_share(ServiceResolver(SOURCE, "digits")) == pytest.approx(1 / 3, abs=0.03)


def test_service_without_ready_endpoints_has_no_route() -> None:
    with pytest.raises(NoRoute, match="no ready endpoints"):
        ServiceResolver(SOURCE, "empty").resolve({}, random.Random(0))


def test_endpoints_outside_loopback_are_refused() -> None:
    with pytest.raises(NonLoopbackAddress, match="loopback"):
        Endpoint("10.0.0.5", 8500)
    with pytest.raises(NonLoopbackAddress):
        Endpoint("example.com", 8500)


def test_only_ready_and_not_terminating_endpoint_slice_addresses_are_used() -> None:
    slices: list[dict[str, Any]] = [
        {
            "endpoints": [
                {"addresses": ["127.0.20.1"], "conditions": {"ready": True}, "targetRef": {"name": "a"}},
                {"addresses": ["127.0.20.2"], "conditions": {"ready": False}, "targetRef": {"name": "b"}},
                {"addresses": ["127.0.20.3"], "conditions": {"ready": True, "terminating": True}},
                {"addresses": ["127.0.20.4"], "conditions": {}, "targetRef": {"name": "d"}},
            ]
        }
    ]
    found = ready_endpoints(slices, 8500, {"a": {"modelrelease.io/version": "2"}})
    assert [e.host for e in found] == ["127.0.20.1", "127.0.20.4"]
    assert found[0].version == "2"
    assert found[0].target == "127.0.20.1:8500"


def http_route(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "spec": {"rules": rules}}


def backend(name: str, weight: int) -> dict[str, Any]:
    return {"name": name, "port": 8500, "weight": weight}


def test_httproute_backend_weights_split_traffic() -> None:
    route = http_route([{"backendRefs": [backend("digits-stable", 75), backend("digits-canary", 25)]}])
    assert canary_share(HTTPRouteResolver(SOURCE, lambda: route)) == pytest.approx(0.25, abs=0.03)


def test_httproute_header_match_sends_the_cohort_to_the_canary_and_others_by_weight() -> None:
    route = http_route(
        [
            {"backendRefs": [backend("digits-stable", 100), backend("digits-canary", 0)]},
            {
                "matches": [{"headers": [{"name": "X-Cohort", "value": "b"}]}],
                "backendRefs": [backend("digits-canary", 1)],
            },
        ]
    )
    resolver = HTTPRouteResolver(SOURCE, lambda: route)
    assert canary_share(resolver, {"x-cohort": "b"}) == 1.0
    assert canary_share(resolver, {"x-cohort": "a"}) == 0.0
    assert canary_share(resolver) == 0.0


def test_httproute_precedence_prefers_more_header_matches_then_earlier_rules() -> None:
    route = http_route(
        [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [backend("a", 1)]},
            {"matches": [{"headers": [{"name": "x-cohort", "value": "b"}]}], "backendRefs": [backend("b", 1)]},
            {"matches": [{"headers": [{"name": "x-cohort", "value": "b"}]}], "backendRefs": [backend("c", 1)]},
            {
                "matches": [{"headers": [{"type": "RegularExpression", "name": "x-cohort", "value": "[b-z]"}]}],
                "backendRefs": [backend("d", 1)],
            },
        ]
    )
    assert select_http_route_rule(route, {"x-cohort": "b"})["backendRefs"][0]["name"] == "b"
    assert select_http_route_rule(route, {"x-cohort": "q"})["backendRefs"][0]["name"] == "d"
    assert select_http_route_rule(route, {})["backendRefs"][0]["name"] == "a"


def test_httproute_exact_path_beats_prefix_and_unmatched_path_has_no_rule() -> None:
    route = http_route(
        [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/tensorflow.serving"}}], "backendRefs": []},
            {
                "matches": [{"path": {"type": "Exact", "value": "/tensorflow.serving.PredictionService/Predict"}}],
                "backendRefs": [backend("exact", 1)],
            },
        ]
    )
    assert select_http_route_rule(route, {})["backendRefs"][0]["name"] == "exact"
    other = http_route([{"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": []}])
    assert select_http_route_rule(other, {}) is None
    with pytest.raises(NoRoute, match="no HTTPRoute rule"):
        HTTPRouteResolver(SOURCE, lambda: other).resolve({}, random.Random(0))


def test_httproute_request_mirror_copies_its_percent_of_requests() -> None:
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "digits-canary", "port": 8500}}}
    full = http_route([{"filters": [mirror], "backendRefs": [backend("digits-stable", 1)]}])
    assert mirror_share(HTTPRouteResolver(SOURCE, lambda: full)) == 1.0
    assert canary_share(HTTPRouteResolver(SOURCE, lambda: full)) == 0.0
    partial_filter = {**mirror, "requestMirror": {**mirror["requestMirror"], "percent": 20}}
    partial = http_route([{"filters": [partial_filter], "backendRefs": [backend("digits-stable", 1)]}])
    assert mirror_share(HTTPRouteResolver(SOURCE, lambda: partial)) == pytest.approx(0.2, abs=0.03)
    fraction_filter = {**mirror, "requestMirror": {**mirror["requestMirror"], "fraction": {"numerator": 1}}}
    fraction = http_route([{"filters": [fraction_filter], "backendRefs": [backend("digits-stable", 1)]}])
    assert mirror_share(HTTPRouteResolver(SOURCE, lambda: fraction)) == pytest.approx(0.01, abs=0.01)


def test_mirror_without_endpoints_does_not_fail_the_request() -> None:
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "empty"}}}
    route = http_route([{"filters": [mirror], "backendRefs": [backend("digits-stable", 1)]}])
    decision = HTTPRouteResolver(SOURCE, lambda: route).resolve({}, random.Random(0))
    assert decision.mirrors == ()


def test_httproute_with_all_weights_zero_has_no_route() -> None:
    route = http_route([{"backendRefs": [backend("digits-stable", 0), backend("digits-canary", 0)]}])
    with pytest.raises(NoRoute, match="weight 0"):
        HTTPRouteResolver(SOURCE, lambda: route).resolve({}, random.Random(0))


def virtual_service(http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "spec": {"hosts": ["digits"], "http": http},
    }


def destination(host: str, weight: int | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"destination": {"host": host, "port": {"number": 8500}}}
    if weight is not None:
        route["weight"] = weight
    return route


def test_virtual_service_weights_split_traffic_and_fqdn_hosts_name_services() -> None:
    vs = virtual_service(
        [{"route": [destination("digits-stable.ml.svc.cluster.local", 95), destination("digits-canary.ml", 5)]}]
    )
    assert canary_share(VirtualServiceResolver(SOURCE, lambda: vs)) == pytest.approx(0.05, abs=0.015)


def test_virtual_service_first_matching_route_wins() -> None:
    vs = virtual_service(
        [
            {"match": [{"headers": {"x-cohort": {"exact": "b"}}}], "route": [destination("digits-canary")]},
            {"route": [destination("digits-stable")]},
        ]
    )
    resolver = VirtualServiceResolver(SOURCE, lambda: vs)
    assert canary_share(resolver, {"X-Cohort": "b"}) == 1.0
    assert canary_share(resolver, {"x-cohort": "a"}) == 0.0
    assert select_virtual_service_route(vs, {"x-cohort": "b"})["route"][0]["destination"]["host"] == "digits-canary"


def test_virtual_service_mirror_percentage_and_mirrors_list() -> None:
    vs = virtual_service(
        [
            {
                "route": [destination("digits-stable")],
                "mirror": {"host": "digits-canary"},
                "mirrorPercentage": {"value": 50.0},
            }
        ]
    )
    assert mirror_share(VirtualServiceResolver(SOURCE, lambda: vs)) == pytest.approx(0.5, abs=0.03)
    newer = virtual_service(
        [{"route": [destination("digits-stable")], "mirrors": [{"destination": {"host": "digits-canary"}}]}]
    )
    assert mirror_share(VirtualServiceResolver(SOURCE, lambda: newer)) == 1.0


def test_virtual_service_subsets_are_refused_with_a_reason() -> None:
    vs = virtual_service([{"route": [{"destination": {"host": "digits", "subset": "v2"}}]}])
    with pytest.raises(NoRoute, match="DestinationRule"):
        VirtualServiceResolver(SOURCE, lambda: vs).resolve({}, random.Random(0))


def test_missing_route_object_has_no_route() -> None:
    with pytest.raises(NoRoute, match="does not exist"):
        HTTPRouteResolver(SOURCE, lambda: None).resolve({}, random.Random(0))
    with pytest.raises(NoRoute, match="does not exist"):
        VirtualServiceResolver(SOURCE, lambda: None).resolve({}, random.Random(0))


def test_service_endpoints_from_pods_are_the_ready_pods_its_selector_picks() -> None:
    def pod(name: str, ip: str, version: str, ready: bool, deleting: bool = False) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "labels": {"app": "digits", "modelrelease.io/version": version}}
        if deleting:
            metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        return {"metadata": metadata, "status": {"podIP": ip, "conditions": [condition]}}

    pods = [
        pod("a", "127.0.20.1", "1", ready=True),
        pod("b", "127.0.20.2", "2", ready=False),
        pod("c", "127.0.20.3", "2", ready=True, deleting=True),
        pod("d", "127.0.20.4", "2", ready=True),
    ]
    found = endpoints_from_pods({"app": "digits"}, pods, 8500)
    assert [(e.host, e.version) for e in found] == [("127.0.20.1", "1"), ("127.0.20.4", "2")]
    assert [e.pod for e in endpoints_from_pods({"modelrelease.io/version": "2"}, pods, 8500)] == ["d"]
    assert endpoints_from_pods({}, pods, 8500) == []


def test_gateway_resolver_sends_through_the_gateway_unless_the_rule_mirrors() -> None:
    from devstack.traffic.routing import GatewayResolver

    gateway = Endpoint("127.0.0.1", 8000, pod="gateway")
    weighted = {"spec": {"rules": [{"backendRefs": [{"name": "digits-stable", "weight": 70}]}]}}
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "digits-canary"}}}
    mirrored = {"spec": {"rules": [{"filters": [mirror], "backendRefs": [{"name": "digits-stable"}]}]}}
    rng = random.Random(3)

    assert GatewayResolver(gateway, SOURCE, lambda: weighted).resolve({}, rng).primary == gateway
    decision = GatewayResolver(gateway, SOURCE, lambda: mirrored).resolve({}, rng)
    assert decision.primary.host != CANARY and decision.primary != gateway
    assert [m.host for m in decision.mirrors] == [CANARY]
