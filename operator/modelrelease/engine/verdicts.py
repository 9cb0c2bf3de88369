"""Turning one check's per-metric results into the stage's counters, and failures into words.

A metric the spec names but the check did not return is inconclusive, never
a silent pass: missing data must not move a release forward.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelrelease.api.spec import MetricSpec, SmokeSpec
from modelrelease.api.status import AnalysisStatus, MetricResult, Verdict
from modelrelease.engine.observations import SmokeResult


def complete_results(configured: Iterable[MetricSpec], results: Iterable[MetricResult]) -> list[MetricResult]:
    """One result per configured metric, in spec order; unknown names are dropped."""
    by_name = {r.name: r for r in results}
    return [
        by_name.get(m.name, MetricResult(name=m.name, verdict="inconclusive", message="no result in this check"))
        for m in configured
    ]


def check_verdict(results: list[MetricResult]) -> Verdict:
    """Any failure fails the check; otherwise any missing data makes it inconclusive."""
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def lacks_data(results: list[MetricResult]) -> bool:
    """True when some metric is inconclusive for want of data, not merely undecided."""
    return any(r.verdict == "inconclusive" and not r.undecided for r in results)


def record_check(analysis: AnalysisStatus, results: list[MetricResult], at: str) -> AnalysisStatus:
    """The stage's counters after one check.

    ``consecutive_inconclusive`` counts checks in a row with a metric
    without data: a metric whose data does not decide yet (``undecided``)
    waits for more without pausing the release.
    """
    verdict = check_verdict(results)
    starved = verdict == "inconclusive" and lacks_data(results)
    return analysis.model_copy(
        update={
            "checks": analysis.checks + 1,
            "passed": analysis.passed + (verdict == "pass"),
            "failures": analysis.failures + (verdict == "fail"),
            "inconclusive": analysis.inconclusive + (verdict == "inconclusive"),
            "consecutive_inconclusive": analysis.consecutive_inconclusive + 1 if starved else 0,
            "last_check_at": at,
            "metrics": results,
            "last_verdict": verdict,
        }
    )


def _value(number: float | None) -> str:
    return "no data" if number is None else f"{number:.4g}"


def sequential_failures(results: list[MetricResult]) -> str:
    """Each metric the sequential test failed, with its pooled counts, estimate, bound and evidence; '' if none.

    The reason names both versions' counts, the estimate, the always-valid
    bound and the evidence against the limit (``sequential``).
    """
    failing = [r for r in results if r.verdict == "fail" and r.judge == "sequential"]
    return "; ".join(r.message for r in failing)


def describe_failures(results: list[MetricResult]) -> str:
    """Name each failing metric with candidate and baseline values, the first thing on-call asks."""
    failing = [r for r in results if r.verdict == "fail"]
    parts = [
        f"{r.name} candidate {_value(r.candidate)} baseline {_value(r.baseline)}"
        + (f" ({r.message})" if r.message else "")
        for r in failing
    ]
    return "; ".join(parts) if parts else "no failing metric in the latest check"


def smoke_failure(result: SmokeResult, smoke: SmokeSpec) -> str | None:
    """Why the smoke test failed, or None when it passed."""
    if result.error:
        return f"smoke test could not run: {result.error}"
    if result.count <= 0:
        return "smoke test predicted nothing: the golden set is empty"
    if result.accuracy < smoke.min_accuracy:
        return (
            f"smoke accuracy {result.accuracy:.4g} on {result.count} golden examples is below {smoke.min_accuracy:.4g}"
        )
    return None
