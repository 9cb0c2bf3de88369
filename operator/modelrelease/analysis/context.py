"""What a metric query is about: which model, release and version, over which window.

Why validated here and not only in the CRD: these values are pasted into
PromQL, so the module that pastes them refuses anything that could change
the query's meaning (a quote, a brace, a comma) whatever the caller checked
before.  The patterns match the API's own name rules, so a valid
ModelRelease never trips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelrelease.api.duration import parse_duration


class UnsafeValueError(ValueError):
    """A value would be substituted into PromQL but does not match its strict pattern."""


_RULES: dict[str, tuple[re.Pattern[str], int, str]] = {
    "model": (re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"), 63, "letters, digits, '_', '.' and '-'"),
    "version": (re.compile(r"[1-9][0-9]*"), 19, "a positive integer"),
    "namespace": (re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"), 63, "a DNS label"),
    "release": (
        re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"),
        253,
        "a Kubernetes object name",
    ),
    "interval": (re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+"), 32, "a Prometheus duration such as 30s or 1m30s"),
    "positive_class": (re.compile(r"[A-Za-z0-9_.:-]+"), 63, "letters, digits, '_', '.', ':' and '-'"),
}


def checked(field: str, value: str) -> str:
    """Return ``value`` if it is safe to paste into PromQL as ``field``; raise UnsafeValueError otherwise."""
    pattern, max_length, allowed = _RULES[field]
    if len(value) > max_length or not pattern.fullmatch(value):
        raise UnsafeValueError(f"{field} {value!r} refused: must be {allowed} (at most {max_length} characters)")
    return value


def promql_duration(interval: str | timedelta) -> str:
    """A Go-style duration (``1.5m``, ``500ms``) as a Prometheus range (``90s``, ``500ms``).

    Prometheus takes only whole numbers per unit, while the API accepts
    fractions, so the window is expressed in whole seconds (or milliseconds).
    """
    span = parse_duration(interval) if isinstance(interval, str) else interval
    milliseconds = round(span.total_seconds() * 1000)
    if milliseconds <= 0:
        raise UnsafeValueError(f"interval {interval!r} refused: must be longer than zero")
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


@dataclass(frozen=True)
class TemplateValues:
    """The placeholder values for one version; construction refuses unsafe ones."""

    model: str
    version: int
    namespace: str
    release: str
    interval: str

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            checked(name, value)

    def as_dict(self) -> dict[str, str]:
        return {
            "model": self.model,
            "version": str(self.version),
            "namespace": self.namespace,
            "release": self.release,
            "interval": self.interval,
        }


@dataclass(frozen=True)
class AnalysisContext:
    """One analysis check: the candidate, the stable version it is compared with (if any), and the window.

    ``interval`` is the range every ``[{{interval}}]`` covers, usually the
    analysis interval (``promql_duration`` converts the spec's form).  A
    window shorter than two scrape intervals holds too few samples for
    ``increase`` or ``rate``, and the checks come back inconclusive.

    ``since`` is when the stage's pools start (``status.stage.reachedAt``)
    and ``until`` the end of this check's windows (queries are evaluated
    then); with both set, pooled metrics measure from where their pool was
    last counted instead of over ``interval`` (``evaluate``).
    """

    model: str
    namespace: str
    release: str
    interval: str
    candidate_version: int
    baseline_version: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    frozen_baseline: bool = False
    """A bake check (``engine.bake``): the baseline serves nobody, its pooled counts stand as they are."""

    def values_for(self, version: int) -> TemplateValues:
        return TemplateValues(self.model, version, self.namespace, self.release, self.interval)
