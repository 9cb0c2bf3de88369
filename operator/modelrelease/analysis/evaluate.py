"""One analysis check: measure every metric's window for candidate and stable version, then judge the check.

All measurements of a check run concurrently, so a check costs about one
Prometheus round trip, and a metric whose queries are refused or fail does
not stop the others: it comes back inconclusive with its reason.

Which window: a metric pooled over the stage (``check.kind_of``) is measured
from where its pool was last counted (``MetricPool.counted_until``), or from
the stage's start (``AnalysisContext.since``) for its first window, up to
``AnalysisContext.until``, so consecutive windows tile the stage and a
check that found no data leaves its time to the next (``MIN_WINDOW``).  A plain threshold
is measured over the last ``interval``.  Judging is ``check.judge_check``.

A bake check (``AnalysisContext.frozen_baseline``) does not measure the
baseline version: it serves nobody after a promotion.  Its window is an
increase of zero, so the pools carried in ``previous`` keep the baseline's
counts from the last judged stage and the same tests compare against them;
a plain threshold has no baseline to compare with then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from modelrelease.analysis.check import Window, judge_check, kind_of, needs_stable
from modelrelease.analysis.context import AnalysisContext, TemplateValues, UnsafeValueError, promql_duration
from modelrelease.analysis.provider import Measurement, MetricProvider, Observation, Unmeasured
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricResult
from modelrelease.engine.clock import format_time, parse_time

MIN_WINDOW = timedelta(seconds=2)
"""Shortest window a pooled metric is measured over.

``increase()`` needs two samples in its range; a window shorter than two
scrapes (devstack scrapes every second) often holds one and would come back
empty.  A shorter window is not queried: the pool is judged as it stands and
the next check's window covers the time (``Window.nothing_new``).  In
production keep ``analysis.interval`` at two scrape intervals or more.
"""


async def evaluate(
    metrics: Sequence[MetricSpec],
    context: AnalysisContext,
    provider: MetricProvider,
    previous: Sequence[MetricResult] = (),
    confidence: float = 0.99,
) -> list[MetricResult]:
    """A ``MetricResult`` per metric, in the spec's order; ``previous`` are the stage's results so far."""
    until = context.until
    stamp = format_time(until) if until is not None else None
    earlier = {result.name: result for result in previous}

    async def one(metric: MetricSpec) -> tuple[str, Window]:
        try:
            window = _window_for(metric, context, earlier.get(metric.name))
            if window is None:
                return metric.name, Window.nothing_new()
            candidate_values = window.values_for(context.candidate_version)
            baseline_values = (
                window.values_for(context.baseline_version)
                if context.baseline_version is not None and needs_stable(metric)
                else None
            )
        except UnsafeValueError as refused:
            return metric.name, Window(Unmeasured(f"query not sent: {refused}"))

        async def baseline() -> Observation | None:
            if baseline_values is None:
                return None
            if context.frozen_baseline:
                return _frozen(metric)
            return await provider.measure(metric, baseline_values, until)

        candidate, stable = await asyncio.gather(provider.measure(metric, candidate_values, until), baseline())
        return metric.name, Window(candidate, stable)

    windows = dict(await asyncio.gather(*(one(metric) for metric in metrics)))
    return judge_check(metrics, confidence, windows, previous, stamp)


def _frozen(metric: MetricSpec) -> Observation | None:
    """The baseline's window in a bake check: nothing new (pooled kinds), or nothing at all (a plain threshold)."""
    if kind_of(metric) == "threshold":
        return None
    return Measurement(value=0.0, samples=0, numerator=0.0, denominator=0.0, proportion=True, series=())


def _window_for(metric: MetricSpec, context: AnalysisContext, earlier: MetricResult | None) -> AnalysisContext | None:
    """The context whose ``interval`` covers this metric's window; None when it is shorter than ``MIN_WINDOW``."""
    if kind_of(metric) == "threshold" or context.since is None or context.until is None:
        return context
    start = context.since
    if earlier is not None and earlier.pool is not None and earlier.pool.counted_until is not None:
        start = max(start, parse_time(earlier.pool.counted_until))
    if context.until - start < MIN_WINDOW:
        return None
    return replace(context, interval=promql_duration(_span(start, context.until)))


def _span(start: datetime, until: datetime) -> str:
    seconds = max((until - start).total_seconds(), 0.0)
    return f"{round(seconds * 1000)}ms" if seconds else "0s"


__all__ = ["TemplateValues", "evaluate"]
