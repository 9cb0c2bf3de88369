"""Write docs/api.md, the ModelRelease API reference, from the same schema the CRD is generated from.

Why from the CRD's schema (``crd.open_api_schema``, itself generated from the
pydantic models): the page then lists exactly what the API server enforces
(types, defaults, bounds, patterns and the CEL rules with their messages),
with the models' own descriptions, and cannot drift from them: a test fails
when the committed page differs (``make crds`` rewrites it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelrelease import GROUP, KIND, VERSION
from modelrelease.api.crd import open_api_schema, printer_columns

HEADER = f"""\
<!-- Generated from operator/modelrelease/api by `make crds` (modelrelease.api.reference); do not edit. -->
# API reference: {KIND} ({GROUP}/{VERSION})

Every field of a `{KIND}`, as the API server validates it. The pydantic models in
`operator/modelrelease/api/` are the source; `crds/` and this page are generated
from them. A manifest that breaks a rule below is refused at `kubectl apply`,
with the field named. Durations are Go-style (`30s`, `10m`, `1h30m`).
"""


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "array":
        return f"[]{_type(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        extra = schema.get("additionalProperties")
        return f"map[string]{_type(extra)}" if isinstance(extra, dict) else "object"
    if schema.get("x-kubernetes-int-or-string"):
        return "int or string"
    return str(kind or "any")


def _constraints(schema: dict[str, Any]) -> list[str]:
    found = []
    if "enum" in schema:
        found.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    for key, word in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"), ("maxLength", "length ≤")):
        if key in schema:
            found.append(f"{word} {schema[key]}")
    for key, word in (("minItems", "items ≥"), ("maxItems", "items ≤")):
        if key in schema:
            found.append(f"{word} {schema[key]}")
    if "pattern" in schema:
        found.append(f"pattern `{schema['pattern']}`")
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _object_of(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object a field holds (directly, or as the items of a list), if it has properties of its own."""
    if schema.get("type") == "object" and "properties" in schema:
        return schema
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, dict) and "properties" in items:
        return items
    return None


def _sections(path: str, schema: dict[str, Any]) -> Iterator[str]:
    lines = [f"## `{path}`", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    lines += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    required = set(schema.get("required", ()))
    nested: list[tuple[str, dict[str, Any]]] = []
    for name, field in schema["properties"].items():
        default = f"`{json.dumps(field['default'])}`" if "default" in field else ""
        description = _cell(field.get("description", ""))
        constraints = "; ".join(_constraints(field) or _constraints(field.get("items", {})))
        if constraints:
            description = f"{description} ({_cell(constraints)})" if description else _cell(constraints)
        child = _object_of(field)
        label = f"[`{name}`](#{_anchor(path, name, field)})" if child is not None else f"`{name}`"
        lines.append(f"| {label} | {_type(field)} | {'yes' if name in required else ''} | {default} | {description} |")
        if child is not None:
            nested.append((_child_path(path, name, field), child))
    rules = schema.get("x-kubernetes-validations") or []
    if rules:
        lines += ["", "Rules:", ""]
        lines += [f"- {_cell(rule.get('message') or rule['rule'])}" for rule in rules]
    yield "\n".join(lines) + "\n"
    for child_path, child in nested:
        yield from _sections(child_path, child)


def _child_path(path: str, name: str, field: dict[str, Any]) -> str:
    return f"{path}.{name}[]" if field.get("type") == "array" else f"{path}.{name}"


def _anchor(path: str, name: str, field: dict[str, Any]) -> str:
    """GitHub's heading anchor of the child's section (lower case, punctuation dropped)."""
    heading = _child_path(path, name, field)
    return "".join(c for c in heading.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def render() -> str:
    schema = open_api_schema()
    columns = "\n".join(f"| {c['name']} | `{c['jsonPath']}` |" for c in printer_columns())
    parts = [
        HEADER,
        "`kubectl get mr` shows:\n\n| column | from |\n|---|---|\n" + columns + "\n",
        *_sections("spec", schema["properties"]["spec"]),
        *_sections("status", schema["properties"]["status"]),
    ]
    return "\n".join(parts)


def write(target: Path) -> Path:
    """Write the page, touching the file only when its content changes."""
    text = render()
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return target


def main(argv: list[str], out: Callable[[str], object] = print) -> int:
    if len(argv) != 1:
        out("usage: python -m modelrelease.api.reference <file>   (e.g. docs/api.md)")
        return 2
    out(str(write(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
