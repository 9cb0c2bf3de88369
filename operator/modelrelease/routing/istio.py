"""The ``istio`` router: weights, A/B cohorts and mirroring in the user's Istio VirtualService.

The same contract as the gatewayApi router (``routing.gateway_api``), on a
``networking.istio.io/v1`` VirtualService named by
``spec.traffic.istio.virtualService``:

- the *release's routes*: the user's ``http`` routes with a destination whose
  host is the Service ``<name>-stable`` (or ``<name>-canary``; short or fully
  qualified names alike).  Their ``route`` becomes the split (stable at
  100 - w, canary at w; the stable destination alone when no user goes to the
  candidate); in a shadow stage they get ``mirror`` (the canary host) and
  ``mirrorPercentage``.  A ``mirror`` to another host is the user's and is
  left alone (Istio allows one per route: the shadow stage then waits with
  the route reported malformed).
- *cohort routes* for an A/B stage, named ``modelrelease-<name>-cohort-<i>``
  and inserted just before their release route (Istio takes the first route
  that matches), with the release route's matches AND the stage's headers
  (``exact``; a cookie as a ``regex`` on the Cookie header), sending the
  cohort to the canary only.
- the label ``modelrelease.io/release: <name>``, so edits wake the release.

A VirtualService has no acceptance status to wait for: once it exists and
holds a release route, the split counts as reached when it holds what the
plan asks for.  Subsets (DestinationRule) are not used: the role Services
already select one version each.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.routing.base import RouteRequest
from modelrelease.routing.gateway_api import (
    OWNED_PREFIX,
    Rule,
    RuleDialect,
    UserRouteRouter,
    canary_service,
    cohort_rule_name,
    compose_rules,
    cookie_pattern,
    stable_service,
)

GROUP = "networking.istio.io"
VERSION = "v1"
PLURAL = "virtualservices"
KIND = "VirtualService"


def service_of_host(host: str) -> str:
    return host.split(".", 1)[0]


def _canary_host(host: str, release: str) -> str:
    rest = host.split(".", 1)[1:] if "." in host else []
    return ".".join([canary_service(release), *rest])


def is_cohort_route(http: Mapping[str, Any], release: str) -> bool:
    return str(http.get("name") or "").startswith(f"{OWNED_PREFIX}{release}-cohort-")


def is_release_route(http: Mapping[str, Any], release: str) -> bool:
    if is_cohort_route(http, release):
        return False
    names = {stable_service(release), canary_service(release)}
    return any(
        service_of_host(str((d.get("destination") or {}).get("host", ""))) in names for d in http.get("route") or []
    )


def _is_operator_mirror(http: Mapping[str, Any], release: str) -> bool:
    mirror = http.get("mirror") or {}
    return bool(mirror) and service_of_host(str(mirror.get("host", ""))) == canary_service(release)


def _template_destination(http: Mapping[str, Any], release: str) -> dict[str, Any]:
    destinations = [d.get("destination") or {} for d in http.get("route") or []]
    stable = next((d for d in destinations if service_of_host(str(d.get("host", ""))) == stable_service(release)), None)
    if stable is not None:
        return copy.deepcopy(dict(stable))
    canary = next(d for d in destinations if service_of_host(str(d.get("host", ""))) == canary_service(release))
    template = copy.deepcopy(dict(canary))
    host = str(template["host"])
    template["host"] = ".".join([stable_service(release), *host.split(".", 1)[1:]])
    return template


def header_rules(headers: Mapping[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for name, value in sorted(headers.items()):
        if name.lower() == "cookie":
            found["cookie"] = {"regex": cookie_pattern(value)}
        else:
            found[name.lower()] = {"exact": value}
    return found


def _cohort_route(
    http: Mapping[str, Any], release: str, index: int, match: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    template = _template_destination(http, release)
    matches = []
    for base in http.get("match") or [{}]:
        for cohort in match:
            combined = copy.deepcopy(dict(base))
            combined["headers"] = {**(combined.get("headers") or {}), **header_rules(cohort)}
            matches.append(combined)
    cohort_route = {k: copy.deepcopy(v) for k, v in http.items() if k not in ("name", "match", "route", "mirror")}
    cohort_route.pop("mirrorPercentage", None)
    canary = {**template, "host": _canary_host(str(template["host"]), release)}
    return {
        "name": cohort_rule_name(release, index),
        "match": matches,
        **cohort_route,
        "route": [{"destination": canary}],
    }


def _release_route(http: Mapping[str, Any], release: str, weight: int, mirror: int) -> dict[str, Any]:
    template = _template_destination(http, release)
    canary = {**copy.deepcopy(template), "host": _canary_host(str(template["host"]), release)}
    out = copy.deepcopy(dict(http))
    if weight > 0:
        out["route"] = [{"destination": template, "weight": 100 - weight}, {"destination": canary, "weight": weight}]
    else:
        out["route"] = [{"destination": template}]
    if _is_operator_mirror(http, release):
        out.pop("mirror", None)
        out.pop("mirrorPercentage", None)
    if mirror > 0 and not out.get("mirror"):
        out["mirror"] = copy.deepcopy(canary)
        if mirror < 100:
            out["mirrorPercentage"] = {"value": float(mirror)}
    return out


VIRTUALSERVICE_ROUTES = RuleDialect(is_cohort_route, is_release_route, _cohort_route, _release_route)


def desired_routes(
    routes: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
) -> list[Rule]:
    """A VirtualService's ``http`` routes with the operator's part as ``request`` asks (``compose_rules``)."""
    return compose_rules(VIRTUALSERVICE_ROUTES, routes, release, request, has_candidate)


def observed_split(routes: Sequence[Mapping[str, Any]], release: str) -> tuple[int, int, bool]:
    cohort = any(is_cohort_route(http, release) for http in routes)
    for http in routes:
        if not is_release_route(http, release):
            continue
        destinations = http.get("route") or []
        default = 100 if len(destinations) == 1 else 0
        total = sum(int(d.get("weight", default)) for d in destinations)
        canary = sum(
            int(d.get("weight", default))
            for d in destinations
            if service_of_host(str((d.get("destination") or {}).get("host", ""))) == canary_service(release)
        )
        mirror = 0
        if _is_operator_mirror(http, release):
            mirror = round(float((http.get("mirrorPercentage") or {}).get("value", 100.0)))
        return (round(100 * canary / total) if total else 0), mirror, cohort
    return 0, 0, cohort


def route_problem(service: Mapping[str, Any] | None, namespace: str, name: str, release: str) -> tuple[str, str]:
    where = f"VirtualService {namespace}/{name}"
    if service is None:
        return "RouteMissing", f"{where} does not exist (or Istio's CRDs are not installed): no traffic moved"
    routes = (service.get("spec") or {}).get("http") or []
    if not any(is_release_route(http, release) for http in routes):
        return (
            "RouteMalformed",
            f"{where} has no http route to the host {stable_service(release)}: "
            "add one (the operator manages its weights); no traffic moved",
        )
    return "", ""


class IstioRouter(UserRouteRouter):
    name = "istio"
    group = GROUP
    version = VERSION
    plural = PLURAL
    kind = KIND
    rules_field = "http"

    def route_of(self, spec: ModelReleaseSpec) -> str:
        return spec.traffic.istio.virtual_service if spec.traffic.istio is not None else ""

    def desired(
        self, rules: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
    ) -> list[Rule]:
        return desired_routes(rules, release, request, has_candidate)

    def problem(self, route: Mapping[str, Any] | None, namespace: str, name: str, release: str) -> tuple[str, str]:
        return route_problem(route, namespace, name, release)

    def split(self, rules: Sequence[Mapping[str, Any]], release: str) -> tuple[int, int, bool]:
        return observed_split(rules, release)
