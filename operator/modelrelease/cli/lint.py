"""``modelrelease lint``: refuse offline what the API server would refuse at ``kubectl apply``.

Why the pydantic models: they are the single source of truth the CRD's
schema and CEL rules are generated from, and tests prove the API server and
the models refuse the same manifests at the same field; so linting with the
models is linting with the API server, without one.  Beyond the spec, lint
checks what the API server checks on any object: the group and version
served, and a ``metadata.name`` (or ``generateName``).

Documents of other kinds are skipped (``helm template ... | modelrelease
lint -`` sees Deployments and Services too); a file with no ModelRelease
at all is a problem, so a wrong path does not lint clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from modelrelease import GROUP, KIND, VERSION
from modelrelease.api import InvalidRelease, parse_release


@dataclass
class LintResult:
    source: str
    releases: int = 0
    problems: list[str] = field(default_factory=list)
    """Each line: ``<source>[#<doc>] <namespace/name>: <field path> <what is allowed>``."""


def lint_text(text: str, source: str) -> LintResult:
    result = LintResult(source)
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        result.problems.append(f"{source}: not YAML: {error}".replace("\n", " "))
        return result
    for index, document in enumerate(documents):
        where = f"{source}#{index}" if len(documents) > 1 else source
        if document is None:
            continue
        if not isinstance(document, dict):
            result.problems.append(f"{where}: (root) a manifest must be a mapping, got {type(document).__name__}")
            continue
        for item_index, item in enumerate(_items(document)):
            item_where = f"{where}.items[{item_index}]" if item is not document else where
            if item.get("kind") != KIND:
                continue
            result.releases += 1
            result.problems.extend(f"{item_where} {_label(item)}: {line}" for line in lint_release(item))
    if result.releases == 0 and not result.problems:
        result.problems.append(f"{source}: no {KIND} in it")
    return result


def _items(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``kind: List`` (``kubectl get -o yaml``) is linted item by item."""
    if document.get("kind") == "List" and isinstance(document.get("items"), list):
        return [item for item in document["items"] if isinstance(item, dict)]
    return [document]


def _label(document: dict[str, Any]) -> str:
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return "(no metadata)"
    name = metadata.get("name") or metadata.get("generateName") or "(no name)"
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if isinstance(namespace, str) else str(name)


def lint_release(document: dict[str, Any]) -> list[str]:
    """Every problem the API server would report for this ModelRelease, each starting with its field path."""
    problems: list[str] = []
    expected = f"{GROUP}/{VERSION}"
    if document.get("apiVersion") != expected:
        problems.append(f"apiVersion: is {document.get('apiVersion')!r}, the API server serves {expected}")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        problems.append("metadata: Required value: a mapping with name")
    elif not metadata.get("name") and not metadata.get("generateName"):
        problems.append("metadata.name: Required value: name or generateName is required")
    if "spec" not in document:
        problems.append("spec: Required value")
        return problems
    # The API server ignores status on create and apply (it is a subresource), so lint does too.
    body = {key: value for key, value in document.items() if key not in ("apiVersion", "kind", "status")}
    if isinstance(metadata, dict):
        body["metadata"] = metadata
    try:
        parse_release(body)
    except InvalidRelease as invalid:
        problems.extend(invalid.problems)
    return problems
