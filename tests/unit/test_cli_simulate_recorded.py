"""``simulate`` on the series recorded from a real devstack rollout decides what that rollout decided, in order.

examples/digits/recorded/ holds the release, the series (metrics.csv) and
what the real operator decided (recorded.json), all written by
``python -m devstack.recording``; re-record after changing the judges.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from modelrelease.api import parse_release
from modelrelease.cli.simulate import load_series, simulate

RECORDED = Path(__file__).resolve().parents[2] / "examples" / "digits" / "recorded"


def test_simulate_on_the_recorded_series_makes_the_recorded_rollouts_decisions_in_order() -> None:
    recorded = json.loads((RECORDED / "recorded.json").read_text())
    spec = parse_release(yaml.safe_load((RECORDED / "release.yaml").read_text())).spec
    assert spec.model.version == recorded["candidateVersion"]
    result = simulate(
        spec,
        load_series(RECORDED / "metrics.csv"),
        recorded["stableVersion"],
        ready_after=recorded["readyAfterSeconds"],
    )
    assert [list(decision) for decision in result.decisions] == recorded["decisions"]
    assert str(result.status.phase) == recorded["phase"]


def test_the_recorded_series_covers_both_versions_of_every_metric_of_the_release() -> None:
    spec = parse_release(yaml.safe_load((RECORDED / "release.yaml").read_text())).spec
    series = load_series(RECORDED / "metrics.csv")
    for metric in spec.analysis.metrics:
        for role in ("candidate", "stable"):
            assert series.samples.get((role, metric.name)), (role, metric.name)
