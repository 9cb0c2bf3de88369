"""The generated CRD's structural schema, applied offline to a manifest (everything but CEL).

Why: the API server needs a running devstack and refuses a few hundred
manifests a minute; this checks thousands a second, so the unit fuzz can
compare the CRD with the pydantic models on a far larger sample.  It does
what the API server does before CEL: drop ``null`` fields (the schema has no
nullable fields, and the API server prunes their nulls), refuse unknown
fields (``kubectl``'s strict field validation), then check types, bounds,
patterns, enums and item counts.  CEL rules are not evaluated, so a pass
here means "only a CEL rule could still refuse it".

Patterns are read with Python's ``re``; the API server reads them with Go's
RE2, and where the two differ only the devstack test can tell.
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]


def without_null_fields(value: Any) -> Any:
    """What the API server validates: object fields set to null are pruned (list items are not)."""
    if isinstance(value, dict):
        return {key: without_null_fields(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_null_fields(item) for item in value]
    return value


def _type_problem(schema: Schema, value: Any) -> str | None:
    expected = schema.get("type")
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63,
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }
    if expected is None or checks.get(expected, True):
        return None
    return f"must be of type {expected}"


def structural_problems(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Every place ``value`` breaks ``schema`` (CEL aside), as ``path: problem`` lines."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return (
            []
            if schema.get("type") in (None, "object") or _type_problem(schema, value) is None
            else [f"{path}: {_type_problem(schema, value)}"]
        )
    problem = _type_problem(schema, value)
    if problem:
        return [f"{path}: {problem}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: not one of {schema['enum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and (
            value <= schema["minimum"] if schema.get("exclusiveMinimum") else value < schema["minimum"]
        ):
            found.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and (
            value >= schema["maximum"] if schema.get("exclusiveMaximum") else value > schema["maximum"]
        ):
            found.append(f"{path}: above {schema['maximum']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            found.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{path}: more than {schema['maxItems']} items")
        for index, item in enumerate(value):
            found += structural_problems(schema.get("items", {}), item, f"{path}[{index}]")
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            found.append(f"{path}: more than {schema['maxProperties']} entries")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            found.append(f"{path}: fewer than {schema['minProperties']} entries")
        properties: Schema = schema.get("properties", {})
        extra: Schema | None = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{path}.{name}: required")
        for key, item in value.items():
            if key in properties:
                found += structural_problems(properties[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += structural_problems(extra, item, f"{path}[{key}]")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}.{key}: unknown field")
    return found
