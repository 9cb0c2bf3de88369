"""``modelrelease simulate``: the real engine and judges over a metric series on a virtual clock."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from modelrelease.analysis import Measurement, TemplateValues, Unmeasured
from modelrelease.api import parse_spec
from modelrelease.cli import main
from modelrelease.cli.simulate import SeriesError, SeriesProvider, read_series, simulate, synthetic_series

SPEC = {
    "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
    "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 3},
    "stages": [{"name": "canary", "weight": 25, "duration": "30s"}, {"name": "full", "weight": 100}],
    "analysis": {
        "interval": "5s",
        "minChecks": 2,
        "metrics": [{"name": "accuracy", "template": "accuracy", "min": 0.8, "compareToBaseline": {"maxDrop": 0.05}}],
    },
}
MANIFEST = f"apiVersion: modelrelease.io/v1alpha1\nkind: ModelRelease\nmetadata: {{name: digits}}\nspec: {SPEC}\n"


def test_a_candidate_as_good_as_stable_is_promoted_after_its_stage_time() -> None:
    spec = parse_spec(SPEC)
    series = synthetic_series(spec.analysis.metrics, {"accuracy": 0.97}, {"accuracy": 0.96}, 300, 10)
    result = simulate(spec, series, 1)
    assert result.exit_code == 0
    assert result.decisions == [
        ("Started", None),
        ("StageCompleted", "canary"),
        ("StageCompleted", "full"),
        ("Promoted", None),
    ]
    promoted = next(h for h in result.happenings if h.reason == "Promoted")
    # Ready at 5 s, then at least the canary's 30 s at its weight, and as long again as the
    # sequential test needs to show the accuracy within its margin.
    assert 35 <= promoted.seconds <= 60, promoted


def test_a_worse_candidate_is_rolled_back_by_the_sequential_test_saying_why() -> None:
    spec = parse_spec(SPEC)
    series = synthetic_series(spec.analysis.metrics, {"accuracy": 0.6}, {"accuracy": 0.96}, 300, 10)
    result = simulate(spec, series, 1)
    assert result.exit_code == 1
    assert result.decisions[-1] == ("RolledBack", "canary")
    failed = [h for h in result.happenings if h.reason == "AnalysisFailed"]
    # One sequential fail is evidence enough: no failureLimit for a pooled proportion.
    assert failed and "sequential test failed: accuracy" in failed[0].message, failed
    assert "maxDrop 0.05" in failed[0].message and "evidence" in failed[0].message


def test_a_series_that_ends_before_a_decision_leaves_it_undecided() -> None:
    spec = parse_spec(SPEC)
    series = synthetic_series(spec.analysis.metrics, {"accuracy": 0.97}, {"accuracy": 0.96}, 20, 10)
    assert simulate(spec, series, 1).exit_code == 2


def test_the_series_provider_reads_increases_of_cumulative_counters_over_the_window() -> None:
    series = read_series(
        io.StringIO(
            "seconds,role,metric,numerator,denominator,value\n"
            "0,candidate,accuracy,0,0,\n"
            "10,candidate,accuracy,90,100,\n"
            "20,candidate,accuracy,170,200,\n"
        )
    )
    spec = parse_spec(SPEC)
    provider = SeriesProvider(series, candidate_version=2)
    values = TemplateValues("digits", 2, "ns", "digits", "10s")
    provider.now_seconds = 20
    measured = asyncio.run(provider.measure(spec.analysis.metrics[0], values))
    assert measured == Measurement(value=0.8, samples=100, numerator=80, denominator=100, proportion=True)
    stable = asyncio.run(provider.measure(spec.analysis.metrics[0], TemplateValues("digits", 1, "ns", "digits", "10s")))
    assert isinstance(stable, Unmeasured)


def test_a_csv_without_the_columns_or_with_a_bad_role_is_refused_naming_the_line() -> None:
    with pytest.raises(SeriesError, match="missing column"):
        read_series(io.StringIO("seconds,role,metric\n"))
    with pytest.raises(SeriesError, match=r"metrics:2: role is 'canary'"):
        read_series(io.StringIO("seconds,role,metric,numerator,denominator,value\n1,canary,a,1,1,\n"))


def test_simulate_command_prints_the_story_and_exits_with_the_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "release.yaml"
    manifest.write_text(MANIFEST)
    args = ["simulate", str(manifest), "--synthetic", "--stable-rate", "accuracy=0.96", "--duration", "5m"]
    assert main([*args, "--candidate-rate", "accuracy=0.5"]) == 1
    out = capsys.readouterr().out
    assert "+00:05  CandidateReady" in out and "AnalysisFailed" in out and "rolled back" in out.splitlines()[-1]
    assert main([*args, "--candidate-rate", "accuracy=0.97", "-o", "json"]) == 0
    assert '"outcome": "Succeeded"' in capsys.readouterr().out
    assert main(["simulate", str(manifest)]) == 2
