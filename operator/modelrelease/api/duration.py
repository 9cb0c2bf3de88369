"""Go-style durations (``30s``, ``10m``, ``1h30m``, ``500ms``).

Why Go's syntax: it is what Flagger, Argo Rollouts and Kubernetes itself
use, so a platform engineer can paste values across tools unchanged, and the
API server's CEL ``duration()`` parses it, so the CRD can check bounds too.

Durations are capped at a year: longer values are almost always a typo, and
Go's duration type overflows at about 292 years, which would turn a CEL
check into an evaluation error instead of a clear refusal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from modelrelease.api.cel import literal
from modelrelease.api.constrained import ConstrainedText

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DURATION_MAX_LENGTH = 20
MAX_DURATION = "8760h"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration; raise ValueError naming what is allowed."""
    if len(text) > DURATION_MAX_LENGTH or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"{text[:DURATION_MAX_LENGTH]!r} is not a duration: use a number with a unit (ms, s, m, h), "
            "e.g. 30s, 10m, 1h, 1h30m, 500ms"
        )
    seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class DurationRule(ConstrainedText):
    """``Annotated`` metadata: a Go duration between ``minimum`` and a year, checked here and by CEL."""

    minimum: str = "0s"

    def check(self, text: str) -> str:
        value = parse_duration(text)
        if value < parse_duration(self.minimum):
            raise ValueError(f"{text!r} is too short: at least {self.minimum} is allowed")
        if value > parse_duration(MAX_DURATION):
            raise ValueError(f"{text!r} is too long: at most {MAX_DURATION} (a year) is allowed")
        return text

    def cel_rules(self) -> list[dict[str, str]]:
        # Guarded by the pattern: a malformed value is already refused by it,
        # and duration() on it would add a confusing type-conversion error.
        guard = f"!self.matches({literal(DURATION_PATTERN)}) || "
        bounds = [(">=", self.minimum, "at least")] if parse_duration(self.minimum) > timedelta(0) else []
        bounds.append(("<=", MAX_DURATION, "at most"))
        return [
            {"rule": f'{guard}duration(self) {op} duration("{limit}")', "message": f"must be {words} {limit}"}
            for op, limit, words in bounds
        ]

    def schema_extra(self) -> dict[str, Any]:
        return {
            "pattern": DURATION_PATTERN,
            "maxLength": DURATION_MAX_LENGTH,
            "x-kubernetes-validations": self.cel_rules(),
        }


Duration = Annotated[str, DurationRule()]
Interval = Annotated[str, DurationRule(minimum="1s")]
"""The analysis interval: checks more often than once a second only load Prometheus."""
