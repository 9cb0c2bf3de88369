"""The chart's Grafana dashboard: sound structure, and only series the operator exports."""

from __future__ import annotations

import copy
import re

from dashboard_support import load, queries, structural_problems, substitute
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelrelease import metrics
from modelrelease.api.status import AnalysisStatus, MetricResult, ModelReleaseStatus, Phase, StageStatus


def test_the_dashboard_is_structurally_sound() -> None:
    assert structural_problems(load()) == []


def test_the_check_finds_what_grafana_would_refuse_or_misshow() -> None:
    dashboard = load()
    broken = copy.deepcopy(dashboard)
    broken["panels"][2]["id"] = broken["panels"][1]["id"]
    broken["panels"][3]["gridPos"]["x"] = 20
    broken["panels"][4]["targets"][0]["expr"] = 'modelrelease_release_phase{namespace=~"$nmspace"}'
    broken["panels"][5]["targets"].append(dict(broken["panels"][5]["targets"][0]))
    problems = "\n".join(structural_problems(broken))

    assert "id missing or not unique" in problems
    assert "outside the 24-column grid" in problems
    assert "$nmspace is not a template variable" in problems
    assert "refIds missing or repeated" in problems


def test_every_series_the_dashboard_reads_is_one_the_operator_exports() -> None:
    status = ModelReleaseStatus(
        phase=Phase.PROGRESSING,
        stable_version=1,
        candidate_version=2,
        stage=StageStatus(index=1, name="canary", weight=10, entered_at="2026-01-01T00:00:00Z"),
        analysis=AnalysisStatus(metrics=[MetricResult(name="accuracy", candidate=0.9, baseline=0.9, samples=9)]),
    )
    metrics.LEADER.set(1)
    metrics.record_release("ml", "digits", status)
    try:
        text = generate_latest(metrics.REGISTRY).decode()
    finally:
        metrics.forget_release("ml", "digits")
        metrics.LEADER.set(0)
    # Labelled series without a child yet have no samples: their names come from their family's type.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes.get(family.type, ("",))
    }
    read = {name for _, expr in queries(load()) for name in re.findall(r"\b(modelrelease_[a-z_]+)", expr)}
    assert read, "the dashboard reads no modelrelease_* series"
    assert read <= exported, f"the dashboard reads series the operator does not export: {sorted(read - exported)}"


def test_substitution_selects_one_release() -> None:
    expr = 'x{namespace=~"$namespace",release=~"$release"}[$__rate_interval]'
    assert substitute(expr, "ml", "digits") == 'x{namespace=~"ml",release=~"digits"}[1m]'
