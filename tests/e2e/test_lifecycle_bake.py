"""The bake after a promotion, on devstack: the previous version stays warm, a fault rolls back to it at once.

v1 is stable, v2 walks smoke and a 50% canary (judged against v1) and is
promoted; then it bakes.  With a fault injected into v2 during the bake (the
data plane makes v2 answer wrongly) the release must be back on the warm v1
from one failed check, with no pod started; without a fault, v1 is scaled to
zero when the bake is over.  Lineage metadata rides along in history, and
oversized metadata is refused by the API server.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
import yaml
from rollout_support import Releases, answers_since

from devstack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(420)]

INTERVAL_SECONDS = 2.0
LINEAGE = {
    "training-run": "mlflow/runs/8c1f",
    "dataset": "digits@2026-01-01",
    "registry.uri": "models:/digits/2",
}
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 50, "duration": "10s"},
    {"name": "full", "weight": 100},
]


def model_of(releases: Releases) -> str:
    """A model name of the test's own: the fault injected into its v2 must not reach another test's queries.

    The accuracy queries select by model and version (not by namespace), so
    a concurrent test judging ``digits`` v2 would see the wrong answers too.
    """
    return f"digits-{releases.namespace[-5:]}"


def _manifest(releases: Releases, version: int) -> dict[str, Any]:
    manifest = releases.manifest(version, stages=STAGES)
    manifest["spec"]["model"]["name"] = model_of(releases)
    return manifest


def _stable_v1(releases: Releases) -> None:
    releases.apply(_manifest(releases, 1))
    releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 1)


def _baking_manifest(releases: Releases, bake: str, **rollback: Any) -> dict[str, Any]:
    manifest = _manifest(releases, 2)
    manifest["spec"]["model"]["metadata"] = LINEAGE
    manifest["spec"]["rollback"] = {"bakeTime": bake, **rollback}
    return manifest


def _pods(releases: Releases, version: int) -> dict[str, bool]:
    """Pod name -> ready, for one version's pods."""
    found = releases.cluster.kubectl(
        "get", "pods", "-n", releases.namespace, "-l", f"modelrelease.io/version={version}", "-o", "json"
    )
    return {
        pod["metadata"]["name"]: any(
            c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
        )
        for pod in json.loads(found.stdout)["items"]
        if not pod["metadata"].get("deletionTimestamp")
    }


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _only_version_answers(generator: Any, version: str, answers: int = 60) -> None:
    window = {"since": generator.stats}

    def only() -> bool:
        seen = answers_since(window["since"], generator.stats)
        if any(v != version for v in seen):
            window["since"] = generator.stats
            return False
        return seen.get(version, 0) >= answers

    wait_for(only, 60, interval=0.2, message=f"{answers} answers in a row from v{version} only")


def test_a_fault_during_the_bake_rolls_back_to_the_warm_previous_version_with_no_pod_start(
    releases: Releases, traffic: Any
) -> None:
    _stable_v1(releases)
    with traffic(rate=40, model=model_of(releases)) as generator:
        releases.apply(_baking_manifest(releases, "10m"))
        baking = releases.wait_phase("Baking", 240)
        assert baking["stableVersion"] == 2 and baking["bake"]["previousVersion"] == 1
        assert baking["bake"]["baselineStage"] == "canary"
        _only_version_answers(generator, "2")  # the route left v1 (it stays warm, serving nobody)
        warm = _pods(releases, 1)
        assert len(warm) == 3 and all(warm.values()), f"v1 is not warm at full capacity: {warm}"

        generator.answer_wrongly("2")
        fault_at = time.time()
        last_v2, rolled_back_seen = fault_at, None
        v2_answers = generator.stats.versions.get("2", 0)
        while time.time() - fault_at < 120:
            now = time.time()
            answered = generator.stats.versions.get("2", 0)
            if answered != v2_answers:
                v2_answers, last_v2 = answered, now
            if rolled_back_seen is None and releases.status().get("phase") == "RolledBack":
                rolled_back_seen = now
            if rolled_back_seen is not None and now - max(last_v2, rolled_back_seen) > 5:
                break
            time.sleep(0.05)  # sampling the generator's counters for the measurement, not waiting on a condition
        assert rolled_back_seen is not None, (
            f"no rollback within 120 s of the fault: {releases.status().get('message')}"
        )
        _only_version_answers(generator, "1")

    status = releases.status()
    assert status["phase"] == "RolledBack" and status["stableVersion"] == 1 and status["rejectedVersion"] == 2
    entry = [h for h in status["history"] if h["version"] == 2][-1]
    assert (entry["outcome"], entry["reason"], entry["stage"]) == ("RolledBack", "BakeFailed", "bake"), entry
    assert entry["metadata"] == LINEAGE
    assert any(m["name"] == "accuracy" and m["verdict"] == "fail" for m in entry["metrics"]), entry
    assert status["analysis"]["failures"] == 1, "one failed check rolled back"
    assert _pods(releases, 1) == warm, "v1 needed a pod start"
    assert (releases.deployment(1) or {})["spec"]["replicas"] == 3
    wait_for(lambda: (releases.deployment(2) or {}).get("spec", {}).get("replicas") == 0, 60, message="v2 at zero")
    assert "BakeFailed" in [e.get("reason") for e in releases.wait_events("BakeFailed")]
    failed_check = _epoch(entry["at"])
    print(
        f"\nbake rollback: fault -> RolledBack seen {rolled_back_seen - fault_at:.1f}s; "
        f"failed check (status, whole seconds) -> last v2 answer {last_v2 - failed_check:.1f}s; "
        f"RolledBack seen -> last v2 answer {last_v2 - rolled_back_seen:.1f}s "
        f"(analysis interval {INTERVAL_SECONDS:.0f}s)"
    )


def test_without_a_fault_the_bake_passes_and_the_previous_version_is_scaled_to_zero(
    releases: Releases, traffic: Any
) -> None:
    _stable_v1(releases)
    with traffic(rate=40, model=model_of(releases)) as generator:
        releases.apply(_baking_manifest(releases, "20s"))
        releases.wait_phase("Baking", 240)
        _only_version_answers(generator, "2")
        during = generator.stats
        assert (releases.deployment(1) or {})["spec"]["replicas"] == 3
        final = releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 2)
        seen = answers_since(during, generator.stats)

    assert seen.get("1", 0) == 0, f"v1 served users during the bake: {seen}"
    entries = {h["outcome"]: h for h in final["history"] if h["version"] == 2}
    assert entries["BakePassed"]["metadata"] == LINEAGE and entries["Promoted"]["metadata"] == LINEAGE
    assert entries["BakePassed"]["stage"] == "bake"
    assert [m["name"] for m in entries["Promoted"]["metrics"]] == ["accuracy"]
    assert entries["Promoted"]["metrics"][0]["baseline"] is not None
    wait_for(lambda: (releases.deployment(1) or {}).get("spec", {}).get("replicas") == 0, 60, message="v1 at zero")


def test_oversized_lineage_metadata_is_refused_at_admission_with_the_field_named(releases: Releases) -> None:
    manifest = releases.manifest(1)
    manifest["spec"]["model"]["metadata"] = {"report": "x" * 300}
    manifest["metadata"]["namespace"] = releases.namespace
    refused = releases.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert refused.returncode != 0
    assert "spec.model.metadata.report" in refused.stderr and "256" in refused.stderr, refused.stderr
    manifest["spec"]["model"]["metadata"] = {f"k{i}": "v" for i in range(9)}
    refused = releases.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert refused.returncode != 0 and "spec.model.metadata" in refused.stderr, refused.stderr
    assert releases.cluster.kubectl("get", "mr", "-n", releases.namespace, "-o", "name").stdout.strip() == ""
