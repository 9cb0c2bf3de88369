"""Turning validation failures into lines a user can act on.

pydantic reports where an error is as a tuple (``('stages', 2, 'weight')``)
and cross-field rules can only raise at the model that holds both fields.
Both are rendered here as one path in manifest notation
(``spec.stages[2].weight``) followed by what is allowed, the same way the
API server names fields, so a user reads one style whether ``kubectl apply``
or the operator refused the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

PROBLEM_TYPE = "modelrelease_invalid"


def problem(field: str, reason: str) -> PydanticCustomError:
    """An error about ``field`` (relative to the model raising it, e.g. ``match`` or ``[2].weight``; "" for itself)."""
    template = "{field} {reason}" if field else "{reason}"
    return PydanticCustomError(PROBLEM_TYPE, template, {"field": field, "reason": reason})


def field_path(loc: Sequence[int | str], root: str = "") -> str:
    """``('stages', 2, 'weight')`` -> ``spec.stages[2].weight`` (with root ``spec``)."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _join(path: str, suffix: str) -> str:
    if not suffix:
        return path
    if suffix.startswith("[") or not path:
        return path + suffix
    return f"{path}.{suffix}"


def explain(error: ValidationError, root: str = "spec") -> list[str]:
    """One line per problem, each starting with the full path of the field at fault."""
    lines = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if not (isinstance(part, str) and "[" in part)]
        path = field_path(loc, root)
        ctx = item.get("ctx") or {}
        if item["type"] == PROBLEM_TYPE:
            lines.append(f"{_join(path, str(ctx['field']))} {ctx['reason']}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{path or '(root)'}: {message}")
    return lines


class InvalidRelease(ValueError):
    """A manifest the operator cannot act on; ``problems`` holds one line per field at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
