"""What a metric may refer to: the built-in templates and the placeholders in PromQL text.

The placeholder list is closed on purpose: the operator substitutes only
values it has validated (model name, version number, namespace, release name,
interval), so a query cannot pull anything else into PromQL. An unknown
``{{...}}`` is refused at apply time instead of reaching Prometheus verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from modelrelease.api.constrained import ConstrainedText

BUILTIN_TEMPLATES: tuple[str, ...] = (
    "tfserving-error-rate",
    "tfserving-latency-p99",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "mae",
    "mse",
    "auc",
    "feedback-positive-rate",
    "prediction-drift",
)
"""Health signals and the model-quality measures the release process names."""

CLASS_TEMPLATES: tuple[str, ...] = ("precision", "recall", "f1", "auc")
"""Templates that are computed for one class and so need ``positiveClass``."""

TEMPLATE_PLACEHOLDERS: tuple[str, ...] = ("model", "version", "namespace", "release", "interval")

QUERY_MAX_LENGTH = 4096
NOT_BLANK = r"[^\t\n\f\r ]"
"""A character other than RE2's whitespace (its \\s), spelled out so Python reads the pattern as the API server does."""
_ALLOWED = ", ".join("{{" + name + "}}" for name in TEMPLATE_PLACEHOLDERS)
PLACEHOLDER_MESSAGE = f"only the placeholders {_ALLOWED} may be used"


def unknown_placeholders(text: str) -> list[str]:
    """The ``{{...}}`` pieces of ``text`` that are not allowed placeholders (stray braces included)."""
    rest = text
    for name in TEMPLATE_PLACEHOLDERS:
        rest = rest.replace("{{" + name + "}}", "")
    found = re.findall(r"\{\{.*?\}\}", rest)
    leftover = re.sub(r"\{\{.*?\}\}", "", rest)
    if "{{" in leftover or "}}" in leftover:
        found.append("unbalanced '{{' or '}}'")
    return found


def placeholder_cel_rule() -> dict[str, str]:
    """The CEL twin of :func:`unknown_placeholders`: strip the allowed ones, then no braces may remain."""
    stripped = "self" + "".join(f'.replace("{{{{{name}}}}}", "")' for name in TEMPLATE_PLACEHOLDERS)
    return {"rule": f'!{stripped}.matches("[{{][{{]|[}}][}}]")', "message": PLACEHOLDER_MESSAGE}


@dataclass(frozen=True)
class PromQLText(ConstrainedText):
    """``Annotated`` metadata for PromQL written by the user: non-empty, bounded, known placeholders only."""

    def check(self, text: str) -> str:
        if not re.search(NOT_BLANK, text):
            raise ValueError("is empty: write a PromQL expression")
        if len(text) > QUERY_MAX_LENGTH:
            raise ValueError(f"is {len(text)} characters long; at most {QUERY_MAX_LENGTH} are allowed")
        unknown = unknown_placeholders(text)
        if unknown:
            raise ValueError(f"uses {', '.join(unknown)}: {PLACEHOLDER_MESSAGE}")
        return text

    def schema_extra(self) -> dict[str, Any]:
        return {
            "pattern": NOT_BLANK,
            "maxLength": QUERY_MAX_LENGTH,
            "x-kubernetes-validations": [placeholder_cel_rule()],
        }


PromQL = Annotated[str, PromQLText()]
