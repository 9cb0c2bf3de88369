"""The ``gatewayApi`` router: weights, A/B cohorts and mirroring in the user's HTTPRoute.

The HTTPRoute (``gateway.networking.k8s.io/v1``, named by
``spec.traffic.gatewayApi.httpRoute``) is the user's object: its parent
Gateways, hostnames, matches and filters are theirs.  The operator edits only
what it owns, and marks it so it can find it again:

- the *release's rules*: the user's rules with a backendRef to the Service
  ``<name>-stable`` (or ``<name>-canary``).  Their ``backendRefs`` become the
  split (``<name>-stable`` at 100 - w, ``<name>-canary`` at w; the stable
  ref alone, as the user wrote it, when no user goes to the candidate), and
  in a shadow stage they get a ``RequestMirror`` filter to ``<name>-canary``
  (``percent`` when below 100), which the operator recognises by that
  backendRef.  Their matches and the user's other filters stay as written.
- *cohort rules* for an A/B stage: one rule per release rule, named
  ``modelrelease-<name>-cohort-<i>`` (the rule name is the mark), with the
  release rule's matches AND the stage's headers, and the release rule's
  filters, sending the cohort to ``<name>-canary`` only; everyone else stays
  on the release rule, at 100% stable.  A header named ``cookie`` becomes a
  regular-expression match on the Cookie header (``name=value`` anywhere in
  it), since a Cookie header carries every cookie at once.
- the label ``modelrelease.io/release: <name>`` on the route, so the
  operator's watch wakes the release when someone edits the route.

Everything else (other rules, hostnames, parentRefs, annotations) is never
written: the route is changed with a JSON merge patch of ``spec.rules`` and
that label, conditional on the resourceVersion read (a concurrent edit makes
the write fail and the next pass start over from the new route).

Why the route must be accepted first: a route that is missing, has no rule
for the release, or that no Gateway accepts (``status.parents[].conditions``
``Accepted``) moves no traffic, so the router writes nothing and reports a
problem (a ``RouteReady=False`` condition and an event); the stage waits.
The split counts as reached only once the route holds what the plan asks for
and every parent accepted that generation of it.

On release deletion or a change of router, ``release`` puts the route back:
the release's rules to their stable backendRef alone, without the mirror,
cohort rules and label removed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.kube.client import FIELD_MANAGER, Kube
from modelrelease.kube.manifests import LABEL_RELEASE
from modelrelease.routing.base import ReleaseTarget, RoutePlan, RouteRequest, RouteState

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"
KIND = "HTTPRoute"
OWNED_PREFIX = "modelrelease-"
MERGE = "application/merge-patch+json"

Rule = dict[str, Any]


def stable_service(release: str) -> str:
    return f"{release}-stable"


def canary_service(release: str) -> str:
    return f"{release}-canary"


def cohort_rule_name(release: str, index: int) -> str:
    return f"{OWNED_PREFIX}{release}-cohort-{index}"


def is_cohort_rule(rule: Mapping[str, Any], release: str) -> bool:
    return str(rule.get("name") or "").startswith(f"{OWNED_PREFIX}{release}-cohort-")


def _is_service_ref(ref: Mapping[str, Any]) -> bool:
    return ref.get("group", "") in ("", "core") and ref.get("kind", "Service") == "Service"


def is_release_rule(rule: Mapping[str, Any], release: str) -> bool:
    """A user's rule that sends traffic to the release's role Services (its split is the operator's)."""
    if is_cohort_rule(rule, release):
        return False
    names = {stable_service(release), canary_service(release)}
    return any(_is_service_ref(ref) and ref.get("name") in names for ref in rule.get("backendRefs") or [])


def is_operator_mirror(route_filter: Mapping[str, Any], release: str) -> bool:
    if route_filter.get("type") != "RequestMirror":
        return False
    ref = (route_filter.get("requestMirror") or {}).get("backendRef") or {}
    return bool(_is_service_ref(ref) and ref.get("name") == canary_service(release))


def _template_ref(rule: Mapping[str, Any], release: str) -> dict[str, Any]:
    """The release rule's stable backendRef as the user wrote it (port, namespace...), weight left out."""
    refs = [r for r in rule.get("backendRefs") or [] if _is_service_ref(r)]
    stable = next((r for r in refs if r.get("name") == stable_service(release)), None)
    chosen = stable or next(r for r in refs if r.get("name") == canary_service(release))
    template = {k: copy.deepcopy(v) for k, v in chosen.items() if k != "weight"}
    template["name"] = stable_service(release)
    return template


def cookie_pattern(value: str) -> str:
    """``name=value`` as one cookie anywhere in a Cookie header (RE2 and Go regexp syntax)."""
    return r"(^|.*;\s*)" + re.escape(value) + r"(\s*;.*|$)"


def header_matches(headers: Mapping[str, str]) -> list[dict[str, str]]:
    """A stage's header match as HTTPRoute header matches (a cookie as a regular expression)."""
    found = []
    for name, value in sorted(headers.items()):
        if name.lower() == "cookie":
            found.append({"name": "Cookie", "type": "RegularExpression", "value": cookie_pattern(value)})
        else:
            found.append({"name": name, "type": "Exact", "value": value})
    return found


def _cohort_rule(rule: Mapping[str, Any], release: str, index: int, match: Sequence[Mapping[str, str]]) -> Rule:
    template = _template_ref(rule, release)
    matches = []
    for base in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
        for cohort in match:
            combined = copy.deepcopy(dict(base))
            added = header_matches(cohort)
            added_names = {h["name"].lower() for h in added}
            kept = [h for h in combined.get("headers") or [] if str(h.get("name", "")).lower() not in added_names]
            combined["headers"] = kept + added
            matches.append(combined)
    built: Rule = {"name": cohort_rule_name(release, index), "matches": matches}
    filters = [f for f in rule.get("filters") or [] if not is_operator_mirror(f, release)]
    if filters:
        built["filters"] = copy.deepcopy(filters)
    built["backendRefs"] = [{**template, "name": canary_service(release)}]
    return built


def _release_rule(rule: Mapping[str, Any], release: str, weight: int, mirror: int) -> Rule:
    template = _template_ref(rule, release)
    out = copy.deepcopy(dict(rule))
    if weight > 0:
        out["backendRefs"] = [
            {**template, "weight": 100 - weight},
            {**copy.deepcopy(template), "name": canary_service(release), "weight": weight},
        ]
    else:
        out["backendRefs"] = [template]
    filters = [f for f in rule.get("filters") or [] if not is_operator_mirror(f, release)]
    if mirror > 0:
        mirror_filter: dict[str, Any] = {"backendRef": {**copy.deepcopy(template), "name": canary_service(release)}}
        if mirror < 100:
            mirror_filter["percent"] = mirror
        filters.append({"type": "RequestMirror", "requestMirror": mirror_filter})
    if filters:
        out["filters"] = filters
    else:
        out.pop("filters", None)
    return out


@dataclass(frozen=True)
class RuleDialect:
    """How one kind of route tells and builds the operator's rules: an HTTPRoute's ``rules`` or a VirtualService's ``http``."""

    is_cohort: Callable[[Mapping[str, Any], str], bool]
    is_release: Callable[[Mapping[str, Any], str], bool]
    cohort: Callable[[Mapping[str, Any], str, int, Sequence[Mapping[str, str]]], Rule]
    release: Callable[[Mapping[str, Any], str, int, int], Rule]


def compose_rules(
    dialect: RuleDialect, rules: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
) -> list[Rule]:
    """The route's rules with the operator's part as ``request`` asks; the user's rules are copied unchanged.

    Shared by both routers so that they agree on what a stage means: the
    weight goes to everyone unless the stage matches a cohort (then the
    cohort rule, placed before each release rule, sends the cohort to the
    candidate and the rest stays on stable); nothing flows to a candidate
    that does not exist.
    """
    weight = request.weight if has_candidate and not request.match else 0
    mirror = request.mirror if has_candidate else 0
    cohorts = request.match if has_candidate and request.weight > 0 else ()
    out: list[Rule] = []
    index = 0
    for rule in rules:
        if dialect.is_cohort(rule, release):
            continue
        if not dialect.is_release(rule, release):
            out.append(copy.deepcopy(dict(rule)))
            continue
        if cohorts:
            out.append(dialect.cohort(rule, release, index, cohorts))
        out.append(dialect.release(rule, release, weight, mirror))
        index += 1
    return out


HTTPROUTE_RULES = RuleDialect(is_cohort_rule, is_release_rule, _cohort_rule, _release_rule)


def desired_rules(
    rules: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
) -> list[Rule]:
    """An HTTPRoute's rules with the operator's part as ``request`` asks (``compose_rules``)."""
    return compose_rules(HTTPROUTE_RULES, rules, release, request, has_candidate)


def observed_split(rules: Sequence[Mapping[str, Any]], release: str) -> tuple[int, int, bool]:
    """(canary weight %, mirror %, cohort rules present) as the route says now, from its first release rule."""
    cohort = any(is_cohort_rule(rule, release) for rule in rules)
    for rule in rules:
        if not is_release_rule(rule, release):
            continue
        refs = [r for r in rule.get("backendRefs") or [] if _is_service_ref(r)]
        total = sum(int(r.get("weight", 1)) for r in refs)
        canary = sum(int(r.get("weight", 1)) for r in refs if r.get("name") == canary_service(release))
        weight = round(100 * canary / total) if total else 0
        mirror = 0
        for route_filter in rule.get("filters") or []:
            if is_operator_mirror(route_filter, release):
                spec = route_filter.get("requestMirror") or {}
                fraction = spec.get("fraction")
                if "percent" in spec:
                    mirror = int(spec["percent"])
                elif fraction:
                    mirror = round(100 * int(fraction["numerator"]) / int(fraction.get("denominator", 100)))
                else:
                    mirror = 100
        return weight, mirror, cohort
    return 0, 0, cohort


DEFAULT_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}


def normalized(rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
    """``rules`` with the defaults the HTTPRoute schema fills in, so what was written compares equal to what is read."""
    out: list[Rule] = [copy.deepcopy(dict(rule)) for rule in rules]
    for rule in out:
        matches = rule.setdefault("matches", [copy.deepcopy(DEFAULT_MATCH)])
        for match in matches:
            match.setdefault("path", copy.deepcopy(DEFAULT_MATCH["path"]))
            for header in match.get("headers") or []:
                header.setdefault("type", "Exact")
        for ref in rule.get("backendRefs") or []:
            ref.setdefault("group", "")
            ref.setdefault("kind", "Service")
            ref.setdefault("weight", 1)
        for route_filter in rule.get("filters") or []:
            mirror_ref = (route_filter.get("requestMirror") or {}).get("backendRef")
            if isinstance(mirror_ref, dict):
                mirror_ref.setdefault("group", "")
                mirror_ref.setdefault("kind", "Service")
    return out


def route_problem(route: Mapping[str, Any] | None, namespace: str, name: str, release: str) -> tuple[str, str]:
    """(reason, message) when the route cannot carry the release's traffic; ("", "") when it can."""
    where = f"HTTPRoute {namespace}/{name}"
    if route is None:
        return "RouteMissing", f"{where} does not exist (or the Gateway API CRDs are not installed): no traffic moved"
    rules = (route.get("spec") or {}).get("rules") or []
    if not any(is_release_rule(rule, release) for rule in rules):
        return (
            "RouteMalformed",
            f"{where} has no rule with a backendRef to the Service {stable_service(release)}: "
            "add one (the operator manages its weights); no traffic moved",
        )
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return "RouteNotAccepted", f"{where} is not accepted by any Gateway yet (status.parents is empty)"
    for parent in parents:
        accepted = next((c for c in parent.get("conditions") or [] if c.get("type") == "Accepted"), None)
        if accepted is None or accepted.get("status") != "True":
            ref = parent.get("parentRef") or {}
            why = (accepted or {}).get("message") or (accepted or {}).get("reason") or "no Accepted condition"
            return "RouteNotAccepted", f"{where} is not accepted by Gateway {ref.get('name', '?')}: {why}"
    return "", ""


def parents_caught_up(route: Mapping[str, Any]) -> bool:
    """Every parent accepted the route's current generation (the data plane has the last write)."""
    generation = (route.get("metadata") or {}).get("generation")
    for parent in (route.get("status") or {}).get("parents") or []:
        accepted = next((c for c in parent.get("conditions") or [] if c.get("type") == "Accepted"), None)
        if accepted is None or accepted.get("status") != "True":
            return False
        seen = accepted.get("observedGeneration")
        if seen is not None and generation is not None and int(seen) < int(generation):
            return False
    return True


class UserRouteRouter:
    """What the gatewayApi and istio routers share: read the user's object, patch only the operator's part."""

    name = ""
    group = ""
    version = ""
    plural = ""
    kind = ""
    rules_field = ""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    # --- to specialise ----------------------------------------------------------------------------------------

    def route_of(self, spec: ModelReleaseSpec) -> str:
        raise NotImplementedError

    def desired(
        self, rules: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
    ) -> list[Rule]:
        raise NotImplementedError

    def problem(self, route: Mapping[str, Any] | None, namespace: str, name: str, release: str) -> tuple[str, str]:
        raise NotImplementedError

    def split(self, rules: Sequence[Mapping[str, Any]], release: str) -> tuple[int, int, bool]:
        raise NotImplementedError

    def caught_up(self, route: Mapping[str, Any]) -> bool:
        return True

    def normalize(self, rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
        """Rules as the API server stores them (its schema's defaults filled in)."""
        return [dict(rule) for rule in rules]

    # --- shared -------------------------------------------------------------------------------------------------

    def plan(self, target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
        flowing = target.candidate_version is not None
        return RoutePlan(request=request, weight=request.weight if flowing else 0)

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._kube.read_custom(self.kind, self.group, self.version, self.plural, namespace, name)

    def _rules(self, route: Mapping[str, Any]) -> list[Rule]:
        return list((route.get("spec") or {}).get(self.rules_field) or [])

    async def _write(
        self, route: Mapping[str, Any], rules: list[Rule], label: str | None, namespace: str, name: str
    ) -> None:
        metadata = route.get("metadata") or {}
        labels = metadata.get("labels") or {}
        body: dict[str, Any] = {"metadata": {"resourceVersion": metadata.get("resourceVersion")}}
        if labels.get(LABEL_RELEASE) != label:
            body["metadata"]["labels"] = {LABEL_RELEASE: label}
        if self.normalize(rules) != self.normalize(self._rules(route)):
            body["spec"] = {self.rules_field: rules}
        if len(body) == 1 and "labels" not in body["metadata"]:
            return
        patch: Any = self._kube.custom.patch_namespaced_custom_object
        try:
            await patch(
                self.group,
                self.version,
                namespace,
                self.plural,
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE,
            )
        except ApiException as error:
            if error.status in (404, 409):  # gone or edited since read: the next pass starts from the new one
                return
            raise

    async def apply(self, target: ReleaseTarget, plan: RoutePlan) -> None:
        route = await self._read(target.namespace, target.route_name)
        reason, _ = self.problem(route, target.namespace, target.route_name, target.release)
        if route is None or reason:
            return  # no traffic moved while the route cannot carry it; observe reports why
        rules = self.desired(self._rules(route), target.release, plan.request, target.candidate_version is not None)
        await self._write(route, rules, target.release, target.namespace, target.route_name)

    async def observe(self, target: ReleaseTarget, plan: RoutePlan) -> RouteState:
        route = await self._read(target.namespace, target.route_name)
        reason, problem = self.problem(route, target.namespace, target.route_name, target.release)
        if route is None:
            return RouteState(weight=0, problem=problem, reason=reason)
        rules = self._rules(route)
        weight, mirror, cohort = self.split(rules, target.release)
        flowing = target.candidate_version is not None
        wanted = self.desired(rules, target.release, plan.request, flowing)
        in_place = self.normalize(wanted) == self.normalize(rules)
        if problem:
            return RouteState(weight=weight, mirror=mirror, match_applied=cohort, problem=problem, reason=reason)
        reached = in_place and self.caught_up(route)
        if cohort and reached:
            weight = plan.weight  # the cohort rule is the stage's weight: its share is whoever sends the headers
        return RouteState(
            weight=weight,
            mirror=mirror,
            match_applied=cohort,
            reached=reached,
            message=f"{self.kind} {target.namespace}/{target.route_name}: candidate {weight}%, mirror {mirror}%"
            + (", cohort rule in place" if cohort else "")
            + ("" if in_place else " (being updated)"),
        )

    async def release(self, namespace: str, release: str, route_name: str) -> None:
        route = await self._read(namespace, route_name)
        if route is None:
            return
        rules = self.desired(self._rules(route), release, RouteRequest(), False)
        labels = (route.get("metadata") or {}).get("labels") or {}
        label = None if labels.get(LABEL_RELEASE) == release else labels.get(LABEL_RELEASE)
        await self._write(route, rules, label, namespace, route_name)


class GatewayApiRouter(UserRouteRouter):
    name = "gatewayApi"
    group = GROUP
    version = VERSION
    plural = PLURAL
    kind = KIND
    rules_field = "rules"

    def route_of(self, spec: ModelReleaseSpec) -> str:
        return spec.traffic.gateway_api.http_route if spec.traffic.gateway_api is not None else ""

    def desired(
        self, rules: Sequence[Mapping[str, Any]], release: str, request: RouteRequest, has_candidate: bool
    ) -> list[Rule]:
        return desired_rules(rules, release, request, has_candidate)

    def problem(self, route: Mapping[str, Any] | None, namespace: str, name: str, release: str) -> tuple[str, str]:
        return route_problem(route, namespace, name, release)

    def split(self, rules: Sequence[Mapping[str, Any]], release: str) -> tuple[int, int, bool]:
        return observed_split(rules, release)

    def caught_up(self, route: Mapping[str, Any]) -> bool:
        return parents_caught_up(route)

    def normalize(self, rules: Sequence[Mapping[str, Any]]) -> list[Rule]:
        return normalized(rules)
