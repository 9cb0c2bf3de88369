"""Which Kubernetes API calls the operator's code makes, found by reading it, as RBAC (group, resource, verb).

Why read the code rather than trust a list: a list would go stale the day
someone adds a call.  Every reference to a kubernetes_asyncio API method in
operator/modelrelease (a call, or a method kept in a table to be called
later), every custom-object call and every ``@kopf.on.event`` watch becomes a
``Need``; the chart's RBAC test then finds the rule that allows each one, and
fails for a call no rule allows and for a rule nothing needs.

Receivers are resolved by the name an API object is kept under
(``self.apps = client.AppsV1Api(...)`` makes every ``*.apps.<method>`` an
AppsV1Api call).  A custom-object method's group and plural come from the
calls in the same function (``patch(GROUP, VERSION, namespace, PLURAL, ...)``),
resolved against the module's globals, so name them with constants.
A list method named in a module that passes ``watch=`` to a request is
also a watch (the object cache lists, then watches, with the same method).
``modelrelease/cli`` is left out: the kubectl plugin runs with the user's
own credentials, not the operator's ServiceAccount.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

OPERATOR = Path(__file__).resolve().parents[1] / "operator"
PACKAGE = OPERATOR / "modelrelease"
EXCLUDED = ("cli", "serving/_tfprotos")

API_GROUPS = {
    "CoreV1Api": "",
    "AppsV1Api": "apps",
    "AutoscalingV1Api": "autoscaling",
    "AutoscalingV2Api": "autoscaling",
    "CoordinationV1Api": "coordination.k8s.io",
    "EventsV1Api": "events.k8s.io",
    "PolicyV1Api": "policy",
    "NetworkingV1Api": "networking.k8s.io",
    "BatchV1Api": "batch",
}
CUSTOM = "CustomObjectsApi"
VERBS = {"read": "get", "get": "get", "list": "list", "patch": "patch", "create": "create", "delete": "delete"}
VERBS["replace"] = "update"
SUBRESOURCES = ("status", "scale", "log", "exec", "eviction", "binding", "token")


@dataclass(frozen=True, order=True)
class Need:
    group: str
    resource: str
    verb: str
    where: str  # module:line, for the failure message

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.resource, self.verb)


class Unattributable(Exception):
    """A reference to the API that the scan cannot turn into a (group, resource, verb)."""


def api_methods() -> dict[str, set[str]]:
    """Method name -> the API classes that have it (public request methods only)."""
    found: dict[str, set[str]] = {}
    for name in [*API_GROUPS, CUSTOM]:
        cls = getattr(client, name)
        for attr in dir(cls):
            if attr.startswith("_") or attr.endswith("_with_http_info") or attr == "api_client":
                continue
            found.setdefault(attr, set()).add(name)
    return found


def _plural(kind_snake: str) -> str:
    return kind_snake.replace("_", "") + "s"


def split_method(method: str) -> tuple[str, str, str | None]:
    """``patch_namespaced_deployment_scale`` -> (patch, deployment, scale)."""
    verb_word, _, rest = method.partition("_")
    if verb_word not in VERBS:
        raise Unattributable(f"{method}: no RBAC verb for {verb_word!r}")
    rest = rest.removeprefix("namespaced_").removeprefix("collection_namespaced_").removesuffix("_for_all_namespaces")
    subresource = None
    for sub in SUBRESOURCES:
        if rest.endswith("_" + sub):
            rest, subresource = rest[: -len(sub) - 1], sub
            break
    return VERBS[verb_word], rest, subresource


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _resolve(node: ast.AST, module: Any) -> Any:
    """A constant, or a name (dotted) looked up in the module's globals; None when neither."""
    if isinstance(node, ast.Constant):
        return node.value
    parts = _dotted(node).split(".")
    if "?" in parts or not hasattr(module, parts[0]):
        return None
    value = getattr(module, parts[0])
    for part in parts[1:]:
        value = getattr(value, part, None)
    return value


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if any(relative.startswith(prefix) for prefix in EXCLUDED):
            continue
        name = "modelrelease." + relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        found.append((name.removesuffix(".__init__"), path))
    return found


def receivers(trees: dict[str, ast.Module]) -> dict[str, str]:
    """Last name of what an API object is kept in -> its class (``apps`` -> AppsV1Api)."""
    kept: dict[str, str] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
                called = _dotted(node.value.func).rsplit(".", 1)[-1]
                if called in API_GROUPS or called == CUSTOM:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        kept[_dotted(target).rsplit(".", 1)[-1]] = called
    return kept


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    """Node -> the innermost function around it (ast.walk is breadth-first, so inner functions write last)."""
    owner: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if inner is not node:
                    owner[inner] = node
    return owner


def _custom_targets(function: ast.AST, module: Any) -> set[tuple[str, str]]:
    """(group, plural) of every call in ``function`` shaped like a custom-object call.

    A cluster-wide call (``list_cluster_custom_object``) has no namespace
    argument, so its plural is the third argument, not the fourth.

    A call with ``self.group`` and ``self.plural`` (a base class shared by
    routers), or with parameters named ``group`` and ``plural`` (the Kube
    method those routers read through), stands for every class of the
    operator that sets both as class attributes.
    """
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _dotted(node.func).endswith("_cluster_custom_object") and len(node.args) >= 3:
            group, plural = _resolve(node.args[0], module), _resolve(node.args[2], module)  # (group, version, plural)
            if isinstance(group, str) and "." in group and isinstance(plural, str):
                found.add((group, plural))
        elif isinstance(node, ast.Call) and len(node.args) >= 4:
            first, fourth = node.args[0], node.args[3]
            if (_dotted(first), _dotted(fourth)) in (("self.group", "self.plural"), ("group", "plural")):
                found |= _class_targets()
                continue
            group, plural = _resolve(first, module), _resolve(fourth, module)
            if isinstance(group, str) and "." in group and isinstance(plural, str):
                found.add((group, plural))
    return found


def _class_targets() -> set[tuple[str, str]]:
    """(group, plural) of every operator class that names both as class attributes."""
    found = set()
    for name, _ in _modules():
        for value in vars(importlib.import_module(name)).values():
            group, plural = getattr(value, "group", None), getattr(value, "plural", None)
            if isinstance(value, type) and isinstance(group, str) and "." in group and isinstance(plural, str):
                found.add((group, plural))
    return found


def operator_needs() -> list[Need]:
    """Every API permission the operator's code uses, with where it is used."""
    methods = api_methods()
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in _modules()}
    kept = receivers(trees)
    needs: list[Need] = []
    for name, tree in trees.items():
        module = importlib.import_module(name)
        owner = _enclosing_functions(tree)
        # A module that passes watch= to a request watches with the list methods it names (kube.cache).
        watches = any(isinstance(n, ast.keyword) and n.arg == "watch" for n in ast.walk(tree))
        for node in ast.walk(tree):
            where = f"{name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and node.attr in methods and isinstance(node.ctx, ast.Load):
                receiver = _dotted(node.value).rsplit(".", 1)[-1]
                cls = kept.get(receiver)
                if cls is None:
                    if methods[node.attr] <= {CUSTOM} or receiver in ("client", "config", "kopf"):
                        continue  # not an API object (e.g. a module function of the same name)
                    raise Unattributable(f"{where}: {_dotted(node)}: which API object is {receiver!r}?")
                if cls not in methods[node.attr]:
                    raise Unattributable(f"{where}: {cls} has no method {node.attr}")
                verb, kind, subresource = split_method(node.attr)
                if cls == CUSTOM:
                    function = owner.get(node)
                    targets = _custom_targets(function, module) if function is not None else set()
                    if not targets:
                        raise Unattributable(
                            f"{where}: {node.attr}: no call in the same function names the group and plural "
                            "as constants"
                        )
                    suffix = f"/{subresource}" if subresource else ""
                    needs += [Need(group, plural + suffix, verb, where) for group, plural in targets]
                    continue
                resource = _plural(kind) + (f"/{subresource}" if subresource else "")
                needs.append(Need(API_GROUPS[cls], resource, verb, where))
                if verb == "list" and watches:
                    needs.append(Need(API_GROUPS[cls], resource, "watch", where + " (watch)"))
                function = owner.get(node)
                if (
                    verb == "patch"
                    and function is not None
                    and "APPLY" in {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
                ):
                    needs.append(Need(API_GROUPS[cls], resource, "create", where + " (server-side apply creates)"))
            if isinstance(node, ast.Call) and _dotted(node.func) == "kopf.on.event":
                group, _version, plural = (_resolve(arg, module) for arg in node.args[:3])
                if not isinstance(group, str) or not isinstance(plural, str):
                    raise Unattributable(f"{where}: kopf.on.event with a resource the scan cannot read")
                needs += [Need(group, plural, verb, where + " (kopf watch)") for verb in ("list", "watch")]
    return sorted(needs)
