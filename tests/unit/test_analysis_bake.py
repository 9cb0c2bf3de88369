"""A bake check: the previous version is not measured; its frozen counts are what the new stable is compared with."""

from __future__ import annotations

import asyncio

from test_analysis_evaluate import TableProvider, ratio

from modelrelease.analysis import AnalysisContext, evaluate
from modelrelease.api.spec import MetricSpec
from modelrelease.api.status import MetricPool, MetricResult, PooledPart, VersionCounts

ACCURACY = MetricSpec.model_validate(
    {"name": "accuracy", "template": "accuracy", "min": 0.5, "compareToBaseline": {"maxDrop": 0.02}}
)


def seeded(correct: int, total: int) -> MetricResult:
    part = PooledPart(candidate=VersionCounts(), stable=VersionCounts(numerator=correct, denominator=total))
    return MetricResult(name="accuracy", pool=MetricPool(parts=[part]))


def bake_context() -> AnalysisContext:
    return AnalysisContext(
        "digits", "ml", "digits", "30s", candidate_version=2, baseline_version=1, frozen_baseline=True
    )


def test_a_bake_check_never_queries_the_previous_version_and_keeps_its_counts() -> None:
    provider = TableProvider({("accuracy", 2): ratio(470, 500)})
    [result] = asyncio.run(evaluate([ACCURACY], bake_context(), provider, [seeded(950, 1000)]))
    assert provider.asked == [("accuracy", 2)]
    assert result.pool is not None
    part = result.pool.parts[0]
    assert part.stable == VersionCounts(numerator=950, denominator=1000)
    assert part.candidate == VersionCounts(numerator=470, denominator=500)
    assert result.baseline == 0.95


def test_a_new_stable_far_worse_than_the_frozen_counts_fails_the_sequential_test() -> None:
    provider = TableProvider({("accuracy", 2): ratio(300, 600)})
    [result] = asyncio.run(evaluate([ACCURACY], bake_context(), provider, [seeded(950, 1000)]))
    assert result.verdict == "fail" and result.judge == "sequential"
    assert any(b.bound == "maxDrop" and b.verdict == "fail" for b in result.bounds)


def test_without_a_baseline_pool_only_the_absolute_bounds_judge() -> None:
    provider = TableProvider({("accuracy", 2): ratio(100, 600)})
    [result] = asyncio.run(evaluate([ACCURACY], bake_context(), provider, []))
    assert result.verdict == "fail"
    assert [b.bound for b in result.bounds] == ["min"]
