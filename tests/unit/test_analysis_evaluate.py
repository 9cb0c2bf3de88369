"""evaluate() measures each metric's window for candidate and stable, pools it, and keeps the spec's order.

The provider here is a table of values (this is a unit test of the
orchestration); tests/integration/test_analysis_prometheus.py runs the real one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from modelrelease.analysis import AnalysisContext, Measurement, Observation, TemplateValues, Unmeasured, evaluate
from modelrelease.api.spec import MetricSpec


class TableProvider:
    def __init__(self, table: dict[tuple[str, int], Observation]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []
        self.windows: list[str] = []

    async def measure(self, metric: MetricSpec, values: TemplateValues, at: datetime | None = None) -> Observation:
        self.asked.append((metric.name, values.version))
        self.windows.append(values.interval)
        return self.table.get((metric.name, values.version), Unmeasured("no data"))


def ratio(successes: int, trials: int) -> Measurement:
    return Measurement(successes / trials, trials, successes, trials, proportion=True)


METRICS = [
    MetricSpec(name="error-rate", template="tfserving-error-rate", max=0.01),
    MetricSpec.model_validate(
        {"name": "accuracy", "template": "accuracy", "min": 0.5, "compareToBaseline": {"maxDrop": 0.02}}
    ),
    MetricSpec(name="latency", template="tfserving-latency-p99", max=0.25),
]


def test_each_metric_is_judged_in_order_with_the_baseline_measured_only_when_compared() -> None:
    provider = TableProvider(
        {
            ("error-rate", 3): ratio(0, 1500),
            ("accuracy", 3): ratio(300, 500),
            ("accuracy", 2): ratio(475, 500),
        }
    )
    context = AnalysisContext("digits", "ml", "digits", "30s", candidate_version=3, baseline_version=2)
    results = asyncio.run(evaluate(METRICS, context, provider))
    assert [r.name for r in results] == ["error-rate", "accuracy", "latency"]
    assert [r.verdict for r in results] == ["pass", "fail", "inconclusive"]
    assert [r.judge for r in results[:2]] == ["sequential", "sequential"]
    assert results[1].baseline == 0.95
    assert "(300/500) vs stable 0.95 (475/500): drop 0.35 > maxDrop 0.02 with evidence" in results[1].message
    assert sorted(provider.asked) == [("accuracy", 2), ("accuracy", 3), ("error-rate", 3), ("latency", 3)]


def test_without_a_stable_version_nothing_is_asked_about_one() -> None:
    provider = TableProvider({("accuracy", 1): ratio(480, 500)})
    context = AnalysisContext("digits", "ml", "digits", "30s", candidate_version=1)
    results = asyncio.run(evaluate(METRICS[1:2], context, provider))
    assert results[0].verdict == "pass"
    assert provider.asked == [("accuracy", 1)]


def test_an_unsafe_context_sends_no_query_and_is_inconclusive() -> None:
    provider = TableProvider({})
    context = AnalysisContext('digits"}', "ml", "digits", "30s", candidate_version=3, baseline_version=2)
    results = asyncio.run(evaluate(METRICS, context, provider))
    assert {r.verdict for r in results} == {"inconclusive"}
    assert "refused" in results[0].message
    assert provider.asked == []


def test_a_pooled_metric_measures_the_window_since_its_pool_was_last_counted_and_adds_it() -> None:
    provider = TableProvider({("accuracy", 3): ratio(470, 500), ("accuracy", 2): ratio(475, 500)})
    since = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    first = AnalysisContext("digits", "ml", "digits", "30s", 3, 2, since=since, until=since.replace(second=20))
    earlier = asyncio.run(evaluate(METRICS[1:2], first, provider))
    later = AnalysisContext("digits", "ml", "digits", "30s", 3, 2, since=since, until=since.replace(second=45))
    results = asyncio.run(evaluate(METRICS[1:2], later, provider, earlier))
    assert provider.windows == ["20s", "20s", "25s", "25s"]
    pool = results[0].pool
    assert pool is not None and pool.counted_until == "2026-01-01T12:00:45Z" and pool.intervals == 2
    assert (pool.parts[0].candidate.numerator, pool.parts[0].candidate.denominator) == (940, 1000)
    assert pool.parts[0].stable is not None and pool.parts[0].stable.denominator == 1000


def test_a_window_too_short_for_two_scrapes_is_not_queried_and_the_pool_is_judged_as_it_stands() -> None:
    provider = TableProvider({("accuracy", 3): ratio(470, 500), ("accuracy", 2): ratio(475, 500)})
    since = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    first = AnalysisContext("digits", "ml", "digits", "1s", 3, 2, since=since, until=since.replace(second=3))
    earlier = asyncio.run(evaluate(METRICS[1:2], first, provider))
    soon = AnalysisContext("digits", "ml", "digits", "1s", 3, 2, since=since, until=since.replace(second=4))
    results = asyncio.run(evaluate(METRICS[1:2], soon, provider, earlier))
    assert len(provider.asked) == 2, "nothing asked for the one-second window"
    assert results[0].pool == earlier[0].pool
    assert results[0].verdict == earlier[0].verdict and results[0].undecided == earlier[0].undecided
