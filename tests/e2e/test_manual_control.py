"""Manual control on a real rollout: approval, abort, retry and pause, none of which edits spec.

Approve, abort and retry are annotations the operator consumes; pause is
``spec.paused``, the user's own declarative edit.  After each, the release's
``metadata.generation`` must be exactly what the user's last spec edit made
it: the operator never writes spec, so GitOps sees no drift.

One stable replica keeps these scenarios cheap: the replicas router then
serves every weight as one candidate pod next to it (50%), which is all the
analysis needs here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from rollout_support import Releases

from devstack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

APPROVE = "modelrelease.io/approve"
ABORT = "modelrelease.io/abort"
RETRY = "modelrelease.io/retry"
SMOKE = {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}}
MIN_CHECKS = 2
"""Releases.manifest's analysis.minChecks: passing checks a weighted stage needs."""
CANARY_SECONDS = 4


def _one_replica(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest["spec"]["serving"]["replicas"] = 1
    return manifest


def _stable_v1(releases: Releases, stages: list[dict[str, Any]]) -> None:
    releases.apply(_one_replica(releases.manifest(1, stages=stages)))
    releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 1)


def _request(releases: Releases, key: str, value: str = "") -> None:
    releases.cluster.kubectl(
        "annotate", "--overwrite", "modelrelease", releases.name, "-n", releases.namespace, f"{key}={value}"
    )


def _set_paused(releases: Releases, paused: bool) -> None:
    """The user's own declarative edit (a Git commit would make the same one)."""
    patch = json.dumps({"spec": {"paused": paused}})
    releases.cluster.kubectl(
        "patch", "modelrelease", releases.name, "-n", releases.namespace, "--type=merge", "-p", patch
    )


def _generation(releases: Releases) -> int:
    return int(releases.get()["metadata"]["generation"])


def _annotations(releases: Releases) -> dict[str, str]:
    annotations: dict[str, str] = releases.get()["metadata"].get("annotations") or {}
    return annotations


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def _hold_for_checks(
    releases: Releases, phases: set[str], stage: str, more: int, timeout: float, passing: int = 0
) -> dict[str, Any]:
    """Wait until the operator has judged the stage ``more`` more times and ``passing`` of the stage's checks
    passed, asserting at every look that it stayed put.

    Counting the operator's own checks (not seconds) is what makes "it did
    not advance" mean something: each check is a pass that could have moved on.
    Waiting for passing checks (not assuming them) keeps a busy machine, where
    some checks are inconclusive for want of data, from failing the test.
    ``phases`` are those allowed meanwhile: an inconclusive check turns
    AwaitingApproval into Progressing until the next passing one, as it
    should (approval is asked for once everything else is met).
    """
    first = releases.status()
    assert first.get("phase") in phases and (first.get("stage") or {}).get("name") == stage, first
    target = (first.get("analysis") or {}).get("checks", 0) + more

    def judged_enough() -> dict[str, Any] | None:
        status = releases.status()
        where = ((status.get("stage") or {}).get("name"), status.get("candidateVersion"), status.get("stableVersion"))
        assert where == (stage, 2, 1), f"moved while it must hold: {where}; {status.get('message')}"
        assert status.get("phase") in phases, f"{status.get('phase')} while holding in {phases}"
        analysis = status.get("analysis") or {}
        return status if analysis.get("checks", 0) >= target and analysis.get("passed", 0) >= passing else None

    found = wait_for(judged_enough, timeout, interval=0.5, message=f"{more} more checks in {phases} at {stage}")
    assert found is not None
    return found


def test_approval_stage_waits_for_the_annotation_and_pause_holds_a_stage_that_is_due(
    releases: Releases, traffic: Any
) -> None:
    stages = [
        SMOKE,
        {"name": "canary", "weight": 50, "duration": f"{CANARY_SECONDS}s"},
        {"name": "ab", "weight": 50, "duration": "2s", "approval": True},
        {"name": "full", "weight": 100},
    ]
    _stable_v1(releases, stages)

    with traffic(rate=30):
        releases.set_version(2)
        releases.wait_phase("Progressing", 90, also=lambda s: (s.get("stage") or {}).get("name") == "canary")
        _set_paused(releases, True)
        releases.wait_phase("Paused", 20)
        paused = _hold_for_checks(releases, {"Paused"}, "canary", more=MIN_CHECKS + 2, timeout=90, passing=MIN_CHECKS)
        # The stage was due: enough passing checks and its duration long over, yet it held.
        assert paused["analysis"]["passed"] >= MIN_CHECKS, paused["analysis"]
        entered = datetime.fromisoformat(paused["stage"]["enteredAt"].replace("Z", "+00:00"))
        assert (datetime.now(UTC) - entered).total_seconds() > CANARY_SECONDS, paused["stage"]
        assert _condition(paused, "Progressing")["reason"] == "PausedBySpec"

        _set_paused(releases, False)
        last_edit = _generation(releases)
        releases.wait_phase("AwaitingApproval", 60, also=lambda s: (s.get("stage") or {}).get("name") == "ab")
        _hold_for_checks(
            releases, {"AwaitingApproval", "Progressing"}, "ab", more=MIN_CHECKS + 2, timeout=90, passing=MIN_CHECKS
        )
        waiting = releases.wait_phase("AwaitingApproval", 30, also=lambda s: (s.get("stage") or {}).get("name") == "ab")
        assert waiting["analysis"]["passed"] >= MIN_CHECKS
        assert _condition(waiting, "Progressing")["reason"] == "AwaitingApproval"

        _request(releases, APPROVE, "ab")
        final = releases.wait_phase("Succeeded", 60, also=lambda s: s.get("stableVersion") == 2)

    approved = [h for h in final["history"] if h["outcome"] == "Approved"]
    assert [(h["version"], h["stage"]) for h in approved] == [(2, "ab")]
    # The request is consumed after the status write that records it: wait for it to go.
    wait_for(
        lambda: APPROVE not in _annotations(releases), 30, interval=0.5, message="the operator consumes the request"
    )
    assert _generation(releases) == last_edit, "the operator must not edit spec"
    assert releases.get()["spec"]["paused"] is False and releases.get()["spec"]["model"]["version"] == 2


def test_abort_rolls_back_and_retry_rolls_the_same_version_out_again_without_touching_spec(
    releases: Releases, traffic: Any
) -> None:
    stages = [
        SMOKE,
        {"name": "canary", "weight": 50, "duration": "2s", "approval": True},
        {"name": "full", "weight": 100},
    ]
    _stable_v1(releases, stages)

    with traffic(rate=30):
        releases.set_version(2)
        last_edit = _generation(releases)
        releases.wait_phase("AwaitingApproval", 90, also=lambda s: s.get("candidateVersion") == 2)

        _request(releases, ABORT)
        aborted = releases.wait_phase("RolledBack", 30)
        assert aborted["stableVersion"] == 1 and aborted.get("candidateVersion") is None
        last = [h for h in aborted["history"] if h["version"] == 2][-1]
        assert (last["outcome"], last["reason"], last["stage"]) == ("Aborted", "AbortRequested", "canary"), last
        wait_for(lambda: (releases.deployment(2) or {}).get("spec", {}).get("replicas") == 0, 30, message="v2 at 0")
        assert (releases.deployment(1) or {})["spec"]["replicas"] == 1, "the stable version keeps its capacity"
        assert ABORT not in _annotations(releases)

        _request(releases, RETRY)
        retried = releases.wait_phase("AwaitingApproval", 90, also=lambda s: s.get("candidateVersion") == 2)
        outcomes = [h["outcome"] for h in retried["history"] if h["version"] == 2]
        assert "Retried" in outcomes[outcomes.index("Aborted") :], outcomes
        _request(releases, APPROVE, "canary")
        final = releases.wait_phase("Succeeded", 60, also=lambda s: s.get("stableVersion") == 2)

    assert not {ABORT, RETRY, APPROVE} & set(_annotations(releases)), _annotations(releases)
    assert _generation(releases) == last_edit, "abort, retry and approve must not edit spec"
    assert final["observedGeneration"] == last_edit
    reasons = [e.get("reason") for e in releases.wait_events("AbortRequested", "Approved")]
    assert "AbortRequested" in reasons and "Approved" in reasons, reasons
