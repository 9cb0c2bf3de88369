"""CEL rules (``x-kubernetes-validations``) attached to the models' JSON schema.

Each rule sits next to the pydantic validator that enforces the same thing,
so the API server (at ``kubectl apply``) and the operator (on every read)
refuse the same manifests. The API server prefixes every message with the
path of the object the rule is on; ``field_path`` narrows that path to the
field at fault.
"""

from __future__ import annotations

import json
from typing import Any


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
    message_expression: str | None = None,
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry.

    Leave ``reason`` unset unless it is Required or Forbidden: the API server
    prints a Duplicate reason without the message. ``message_expression`` is
    cost-checked too, on a far smaller budget than rules: keep it trivial.
    """
    entry = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying ``rules``."""
    return {"x-kubernetes-validations": list(rules)}


def literal(text: str) -> str:
    """``text`` as a CEL string literal; JSON's escaping is valid CEL, so regexes survive intact."""
    return json.dumps(text)
