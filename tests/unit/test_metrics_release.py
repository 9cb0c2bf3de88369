"""The per-release gauges (``modelrelease_release_*``) read from a status, as a scrape sees them."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelrelease.api.status import AnalysisStatus, MetricResult, ModelReleaseStatus, Phase, StageStatus
from modelrelease.metrics import ReleaseCollector

ENTERED = "2026-01-01T10:00:00Z"
NOW = datetime(2026, 1, 1, 10, 0, 42, tzinfo=UTC).timestamp()


def _samples(collector: ReleaseCollector) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({"namespace": "ml", "release": "digits", **labels}.items())


def _canary() -> ModelReleaseStatus:
    return ModelReleaseStatus(
        phase=Phase.PROGRESSING,
        stable_version=1,
        candidate_version=2,
        stage=StageStatus(index=2, name="canary-25", weight=25, actual_weight=20, entered_at=ENTERED),
        analysis=AnalysisStatus(
            checks=7,
            metrics=[
                MetricResult(name="accuracy", candidate=0.97, baseline=0.95, verdict="pass", samples=1200),
                MetricResult(name="error-rate", candidate=None, baseline=None, verdict="inconclusive"),
            ],
        ),
    )


def test_a_canary_stage_shows_phase_versions_weights_stage_and_verdicts() -> None:
    collector = ReleaseCollector(leading=lambda: True, now=lambda: NOW)
    collector.record("ml", "digits", _canary())
    samples = _samples(collector)

    assert samples[_key("modelrelease_release_phase", phase="Progressing")] == 1
    assert samples[_key("modelrelease_release_phase", phase="Succeeded")] == 0
    assert sum(v for (name, _), v in samples.items() if name == "modelrelease_release_phase") == 1
    assert samples[_key("modelrelease_release_stable_version")] == 1
    assert samples[_key("modelrelease_release_candidate_version")] == 2
    assert samples[_key("modelrelease_release_desired_weight")] == 25
    assert samples[_key("modelrelease_release_actual_weight")] == 20
    assert samples[_key("modelrelease_release_stage_index", stage="canary-25")] == 2
    assert samples[_key("modelrelease_release_stage_seconds", stage="canary-25")] == 42
    assert samples[_key("modelrelease_release_analysis_checks")] == 7
    assert samples[_key("modelrelease_release_metric_verdict", metric="accuracy", verdict="pass")] == 1
    assert samples[_key("modelrelease_release_metric_verdict", metric="accuracy", verdict="fail")] == 0
    assert samples[_key("modelrelease_release_metric_verdict", metric="error-rate", verdict="inconclusive")] == 1
    assert samples[_key("modelrelease_release_metric_value", metric="accuracy", role="candidate")] == 0.97
    assert samples[_key("modelrelease_release_metric_value", metric="accuracy", role="stable")] == 0.95
    assert samples[_key("modelrelease_release_metric_samples", metric="accuracy")] == 1200
    # A metric without a value has no value series (rather than a made-up 0).
    assert _key("modelrelease_release_metric_value", metric="error-rate", role="candidate") not in samples


def test_a_finished_release_has_no_stage_and_zero_weight() -> None:
    collector = ReleaseCollector(leading=lambda: True, now=lambda: NOW)
    collector.record("ml", "digits", ModelReleaseStatus(phase=Phase.SUCCEEDED, stable_version=2))
    samples = _samples(collector)

    assert samples[_key("modelrelease_release_phase", phase="Succeeded")] == 1
    assert samples[_key("modelrelease_release_stable_version")] == 2
    assert samples[_key("modelrelease_release_desired_weight")] == 0
    assert not any(name.startswith("modelrelease_release_stage") for name, _ in samples)
    assert _key("modelrelease_release_candidate_version") not in samples


def test_a_forgotten_release_and_a_standby_report_nothing() -> None:
    leading = [True]
    collector = ReleaseCollector(leading=lambda: leading[0], now=lambda: NOW)
    collector.record("ml", "digits", _canary())
    collector.record("ml", "other", _canary())
    collector.forget("ml", "digits")
    releases = {dict(labels)["release"] for _, labels in _samples(collector)}
    assert releases == {"other"}

    leading[0] = False
    assert _samples(collector) == {}
