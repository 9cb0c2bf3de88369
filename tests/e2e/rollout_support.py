"""Helpers for the rollout scenarios (no tests here): the operator process, releases, traffic accounting.

The fixtures that hand these out live in conftest.py; this module exists so
test modules can import the types (pytest discourages importing conftest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.scenario import OperatorProcess, Release, digits_release

__all__ = ["ACCURACY_RATIO", "ANALYSIS_INTERVAL", "OperatorProcess", "Releases", "answers_since"]

REPO = Path(__file__).resolve().parents[2]
ANALYSIS_INTERVAL = "2s"
ACCURACY_RATIO = {
    "success": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}",'
    'outcome="correct"}[{{interval}}]))',
    "total": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}"}[{{interval}}]))',
}


@dataclass
class Releases(Release):
    """The scenario's release, plus the small manifest these scenarios vary and a few test shorthands."""

    def manifest(
        self,
        version: int,
        stages: list[dict[str, Any]] | None = None,
        metrics: list[dict[str, Any]] | None = None,
        **analysis: Any,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "stages": stages
            or [
                {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
                {"name": "full", "weight": 100, "minChecks": 1},
            ],
            "analysis": {
                "interval": ANALYSIS_INTERVAL,
                "failureLimit": 2,
                "inconclusiveLimit": 20,
                "minChecks": 2,
                # A wide margin: these scenarios are about stages, weights and control, not judging; the
                # sequential judge passes within it on a few hundred requests (maxDrop 0.02 needs thousands
                # between v1 and v5). tests/e2e/test_sequential_judge.py judges close calls.
                "metrics": metrics
                or [{"name": "accuracy", "ratio": ACCURACY_RATIO, "min": 0.8, "compareToBaseline": {"maxDrop": 0.1}}],
                **analysis,
            },
        }
        return digits_release(self.name, self.namespace, version, 3, **spec)

    def event_reasons(self) -> list[str]:
        return [e.get("reason", "") for e in self.events() if e.get("involvedObject", {}).get("kind") == "ModelRelease"]

    def stable_from_scratch(self, version: int = 1, timeout: float = 90) -> dict[str, Any]:
        self.apply(self.manifest(version))
        return self.wait_phase("Succeeded", timeout, also=lambda s: s.get("stableVersion") == version)


def answers_since(before: Any, after: Any) -> dict[str, int]:
    """Answers users saw per version between two ``TrafficStats`` snapshots."""
    return {
        v: after.versions[v] - before.versions.get(v, 0)
        for v in after.versions
        if after.versions[v] - before.versions.get(v, 0)
    }
