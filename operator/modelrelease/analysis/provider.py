"""The one thing the judges need from a metrics backend: a number for one version, or why there is none.

Why a small interface: the judges, the statistics and the engine never see
PromQL or HTTP, so they are tested with plain values, and another backend
(Datadog, CloudWatch...) is one class that answers ``measure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from modelrelease.analysis.context import TemplateValues
from modelrelease.api.spec import MetricSpec


@dataclass(frozen=True)
class Measurement:
    """A metric's value for one version over the window.

    ``samples`` is how many events the value rests on (None when the metric
    gives no count, e.g. a plain ``query``).  For a ratio, ``numerator`` and
    ``denominator`` are the raw counts; ``proportion`` says they are
    successes out of trials, so binomial bounds apply.  For a grouped plan
    (histogram buckets by ``le``, predictions by class) ``series`` holds the
    counts and ``value`` whatever the plan shows (p99 for latency).
    """

    value: float
    samples: int | None = None
    numerator: float | None = None
    denominator: float | None = None
    proportion: bool = False
    series: tuple[tuple[str, float], ...] | None = None
    """For a plan that groups by a label (``QueryPlan.by``): each label value's count, in label order."""

    @property
    def binomial(self) -> bool:
        """True when confidence bounds for a proportion are meaningful for these counts."""
        return (
            self.proportion
            and self.numerator is not None
            and self.denominator is not None
            and math.isfinite(self.numerator)
            and math.isfinite(self.denominator)
            and 0 <= self.numerator <= self.denominator
            and self.denominator > 0
        )


@dataclass(frozen=True)
class Unmeasured:
    """No usable value: no data, Prometheus unreachable, a query refused.  Always inconclusive."""

    reason: str


Observation = Measurement | Unmeasured


class MetricProvider(Protocol):
    async def measure(self, metric: MetricSpec, values: TemplateValues, at: datetime | None = None) -> Observation:
        """Measure ``metric`` for the version ``values`` describes, over the window ending ``at`` (None: now).

        Never raise for backend trouble.
        """
        ...
