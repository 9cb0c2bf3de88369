"""The golden set: inputs with known answers, read from a ConfigMap, for the smoke stage.

Why so strict: the smoke stage is the last check before users see the
candidate, and a golden set that silently lost rows or labels would let a bad
model through (or fail a good one).  Every problem is reported with the
ConfigMap key and the field at fault, so the release's condition tells the
user exactly what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GOLDEN_KEY = "golden.json"


class GoldenSetError(ValueError):
    """The golden set ConfigMap cannot be used; the message names the field."""


Label = int | str


@dataclass(frozen=True)
class GoldenSet:
    """Inputs for one named input tensor of one signature, and the label each should get."""

    model: str
    signature: str
    input: str
    instances: tuple[tuple[float, ...], ...]
    labels: tuple[Label, ...]
    output: str = "classes"

    @classmethod
    def from_configmap_data(cls, data: Mapping[str, str], key: str = GOLDEN_KEY) -> GoldenSet:
        """Parse ``data[key]`` (JSON: model, signature, input, instances, labels, optional output)."""
        if key not in data:
            raise GoldenSetError(f"ConfigMap has no key {key!r} (keys: {sorted(data)})")
        try:
            document = json.loads(data[key])
        except json.JSONDecodeError as error:
            raise GoldenSetError(f"{key} is not valid JSON: {error}") from error
        if not isinstance(document, dict):
            raise GoldenSetError(f"{key} must be a JSON object, got {type(document).__name__}")
        return cls(
            model=_text(document, "model", key),
            signature=_text(document, "signature", key, default="serving_default"),
            input=_text(document, "input", key),
            instances=_instances(document.get("instances"), key),
            labels=_labels(document.get("labels"), key),
            output=_text(document, "output", key, default="classes"),
        )._checked(key)

    def _checked(self, key: str) -> GoldenSet:
        if len(self.instances) != len(self.labels):
            raise GoldenSetError(
                f"{key}: {len(self.instances)} instances but {len(self.labels)} labels; each instance needs one label"
            )
        return self


def _text(document: dict[str, Any], field: str, key: str, default: str | None = None) -> str:
    value = document.get(field, default)
    if not isinstance(value, str) or not value:
        raise GoldenSetError(f"{key}: field {field!r} must be a non-empty string, got {value!r}")
    return value


def _instances(value: Any, key: str) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, list) or not value:
        raise GoldenSetError(f"{key}: field 'instances' must be a non-empty list of lists of numbers")
    rows: list[tuple[float, ...]] = []
    for index, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise GoldenSetError(f"{key}: instances[{index}] must be a non-empty list of numbers")
        if not all(_is_number(item) for item in row):
            raise GoldenSetError(f"{key}: instances[{index}] holds something that is not a finite number")
        if rows and len(row) != len(rows[0]):
            raise GoldenSetError(
                f"{key}: instances[{index}] has {len(row)} values, instances[0] has {len(rows[0])}; all rows must match"
            )
        rows.append(tuple(float(item) for item in row))
    return tuple(rows)


def _labels(value: Any, key: str) -> tuple[Label, ...]:
    if not isinstance(value, list) or not value:
        raise GoldenSetError(f"{key}: field 'labels' must be a non-empty list of class labels")
    for index, label in enumerate(value):
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise GoldenSetError(f"{key}: labels[{index}] must be an integer or a string, got {label!r}")
    return tuple(value)


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
