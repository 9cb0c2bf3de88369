"""Prometheus stopped in the middle of a rollout: no promotion without data, a visible pause, and a resume.

The devstack's own Prometheus process is stopped (its recorded process
group) and started again on the same address, so the operator sees what it
would see in a cluster: connection refused, then data again.  Prometheus is
always started again, even when the test fails, so later tests have it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rollout_support import Releases

from devstack import scenario
from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.exclusive, pytest.mark.timeout(600)]

INCONCLUSIVE_LIMIT = 3
STAGE_SECONDS = 8


@pytest.fixture
def prometheus_control(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, with a promise that its Prometheus runs again after the test."""
    try:
        yield cluster
    finally:
        from devstack import processes
        from devstack.state import StateDir

        record = StateDir(cluster.state_dir).read()
        if record is not None and not processes.alive(record.pids.get("prometheus", 0)):
            scenario.start_prometheus(cluster)


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def test_rollout_pauses_without_metrics_never_promotes_and_resumes_when_prometheus_returns(
    releases: Releases, traffic: Any, prometheus_control: Cluster
) -> None:
    stages = [
        {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
        {"name": "canary", "weight": 50, "duration": f"{STAGE_SECONDS}s"},
        {"name": "full", "weight": 100},
    ]
    manifest = releases.manifest(1, stages=stages, inconclusiveLimit=INCONCLUSIVE_LIMIT)
    manifest["spec"]["serving"]["replicas"] = 1
    releases.apply(manifest)
    releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 1)

    with traffic(rate=30):
        releases.set_version(2)
        # Data flows before the outage: the stage has a passing check of its own.
        releases.wait_phase(
            "Progressing",
            90,
            also=lambda s: (s.get("stage") or {}).get("name") == "canary" and s["analysis"].get("passed", 0) >= 1,
        )
        scenario.stop_prometheus(prometheus_control)
        try:
            paused = _outage(releases)
        finally:
            scenario.start_prometheus(prometheus_control)
        final = releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 2)

    assert _condition(paused, "Progressing")["status"] == "False"
    assert _condition(paused, "Progressing")["reason"] == "AnalysisInconclusive"
    assert _condition(paused, "Analysis")["status"] == "Unknown"
    assert "Prometheus" in " ".join(m.get("message", "") for m in paused["analysis"]["metrics"]), paused["analysis"]
    reasons = [e.get("reason") for e in releases.wait_events("AnalysisInconclusive", "AnalysisResumed")]
    assert "AnalysisInconclusive" in reasons and "AnalysisResumed" in reasons, reasons
    assert reasons.index("AnalysisInconclusive") < reasons.index("AnalysisResumed")
    assert [h["stage"] for h in final["history"] if h["outcome"] == "StageCompleted" and h["version"] == 2] == [
        "smoke",
        "canary",
        "full",
    ]


def _outage(releases: Releases) -> dict[str, Any]:
    """While Prometheus is down: Paused within the limit, and, checked at every look, never past the canary.

    Waits until the stage's duration is long over and the operator has kept
    checking, so "no promotion" is observed when only the data was missing.
    """

    def paused_long_enough() -> dict[str, Any] | None:
        status = releases.status()
        where = (status.get("stableVersion"), status.get("candidateVersion"), (status.get("stage") or {}).get("name"))
        assert where == (1, 2, "canary"), f"moved on without data: {where}; {status.get('message')}"
        assert not [h for h in status.get("history", []) if h["version"] == 2 and h["outcome"] == "Promoted"]
        inconclusive = status["analysis"].get("consecutiveInconclusive", 0)
        done = status.get("phase") == "Paused" and inconclusive >= INCONCLUSIVE_LIMIT + 2
        return status if done else None

    # Limit x interval until Paused, two more checks, and a margin for the pass timing on a busy machine.
    paused = wait_for(paused_long_enough, max(STAGE_SECONDS, 2 * (INCONCLUSIVE_LIMIT + 2)) + 20, interval=0.5)
    assert paused is not None
    return paused
