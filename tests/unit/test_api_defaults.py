"""The smallest manifest a user writes, and what it means once defaulted."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelrelease.api import ModelReleaseSpec, parse_release, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "digits"
SMALLEST = {
    "model": {"name": "digits", "basePath": "/models/digits", "version": 1},
    "serving": {"image": "tensorflow/serving:2.18.0"},
}


def test_smallest_manifest_gets_smoke_two_canaries_and_full() -> None:
    spec = parse_spec(SMALLEST)
    assert [(s.name, s.kind, s.weight) for s in spec.stages] == [
        ("smoke", "smoke", None),
        ("canary-10", "weight", 10),
        ("canary-50", "weight", 50),
        ("full", "weight", 100),
    ]


def test_smallest_manifest_is_judged_on_error_rate_and_latency() -> None:
    metrics = parse_spec(SMALLEST).analysis.metrics
    assert [(m.name, m.template, m.max) for m in metrics] == [
        ("error-rate", "tfserving-error-rate", 0.01),
        ("latency-p99", "tfserving-latency-p99", 0.25),
    ]


def test_smallest_manifest_defaults_the_rest_to_a_safe_rollout() -> None:
    spec = parse_spec(SMALLEST)
    assert spec.traffic.router == "replicas"
    assert spec.serving.replicas == 1
    assert spec.analysis.interval == "30s"
    assert spec.analysis.failure_limit == 2
    assert spec.rollback.automatic is True
    assert spec.hold_at == ""
    assert spec.paused is False


def test_defaulted_spec_written_back_parses_to_the_same_spec() -> None:
    spec = parse_spec(SMALLEST)
    assert ModelReleaseSpec.model_validate(spec.model_dump(by_alias=True, exclude_none=True)) == spec


def test_minimal_example_is_the_smallest_manifest() -> None:
    release = parse_release(yaml.safe_load((EXAMPLES / "minimal.yaml").read_text()))
    assert release.spec == parse_spec(SMALLEST)


def test_full_example_shows_every_stage_kind_metric_kind_hold_at_and_approval() -> None:
    manifest = yaml.safe_load((EXAMPLES / "full.yaml").read_text())
    spec = parse_release(manifest).spec
    assert {stage.kind for stage in spec.stages} == {"smoke", "mirror", "weight"}
    assert any(stage.match for stage in spec.stages)
    assert any(stage.approval for stage in spec.stages)
    kinds = {("template" if m.template else "query" if m.query else "ratio") for m in spec.analysis.metrics}
    assert kinds == {"template", "query", "ratio"}
    assert any(m.compare_to_baseline for m in spec.analysis.metrics)
    assert "holdAt" in manifest["spec"]
