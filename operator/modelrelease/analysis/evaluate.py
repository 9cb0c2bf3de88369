"""One analysis check: measure every metric for candidate and stable version, then judge each.

All measurements of a check run concurrently, so a check costs about one
Prometheus round trip, and a metric whose queries are refused or fail does
not stop the others: it comes back inconclusive with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modelrelease.analysis.context import AnalysisContext, UnsafeValueError
from modelrelease.analysis.judge import judge
from modelrelease.analysis.provider import MetricProvider, Observation, Unmeasured
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricResult


async def evaluate(
    metrics: Sequence[MetricSpec], context: AnalysisContext, provider: MetricProvider
) -> list[MetricResult]:
    """A ``MetricResult`` per metric, in the spec's order."""
    try:
        candidate_values = context.values_for(context.candidate_version)
        baseline_values = context.values_for(context.baseline_version) if context.baseline_version is not None else None
    except UnsafeValueError as refused:
        return [judge(metric, Unmeasured(f"query not sent: {refused}"), None) for metric in metrics]

    async def baseline_of(metric: MetricSpec) -> Observation | None:
        if baseline_values is None or metric.compare_to_baseline is None:
            return None
        return await provider.measure(metric, baseline_values)

    async def one(metric: MetricSpec) -> MetricResult:
        candidate, baseline = await asyncio.gather(provider.measure(metric, candidate_values), baseline_of(metric))
        return judge(metric, candidate, baseline)

    return list(await asyncio.gather(*(one(metric) for metric in metrics)))
