"""The CLI's manual requests: refused with a reason when they make no sense now, else the annotation to write."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from modelrelease.cli.control import annotation_value, refusal

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
STAGES = [
    {"name": "canary", "weight": 25},
    {"name": "ab", "weight": 50, "approval": True},
    {"name": "full", "weight": 100},
]


def release(phase: str, stage: str | None = None, **status: Any) -> dict[str, Any]:
    index = {"canary": 0, "ab": 1, "full": 2}.get(stage or "", 0)
    body: dict[str, Any] = {"phase": phase, "stableVersion": 1, **status}
    if phase in ("Progressing", "Paused", "AwaitingApproval", "Failed"):
        body.setdefault("candidateVersion", 2)
        body["stage"] = {"index": index, "name": stage or "canary"}
    return {"spec": {"model": {"version": 2}, "stages": copy.deepcopy(STAGES)}, "status": body}


def test_approve_goes_through_only_for_a_stage_with_an_approval_gate_not_yet_approved() -> None:
    assert refusal("approve", release("AwaitingApproval", "ab")) is None
    assert refusal("approve", release("AwaitingApproval", "ab"), "ab") is None
    assert "has no approval gate" in (refusal("approve", release("Progressing", "canary")) or "")
    assert "not the current stage (ab)" in (refusal("approve", release("AwaitingApproval", "ab"), "full") or "")
    approved = release("AwaitingApproval", "ab")
    approved["status"]["stage"]["approved"] = True
    assert "already approved" in (refusal("approve", approved) or "")
    assert refusal("approve", release("Succeeded")) == "no rollout in progress: the release is Succeeded"


def test_retry_needs_a_rolled_back_wanted_version_or_a_failed_rollout() -> None:
    assert refusal("retry", release("RolledBack", rejectedVersion=2)) is None
    assert refusal("retry", release("Failed", "canary")) is None
    assert "nothing to retry" in (refusal("retry", release("Succeeded")) or "")
    assert "nothing to retry" in (refusal("retry", release("Progressing", "canary")) or "")
    assert "nothing to retry" in (refusal("retry", release("RolledBack", rejectedVersion=3)) or "")


@pytest.mark.parametrize("kind", ["promote", "abort"])
def test_promote_and_abort_need_a_candidate(kind: Any) -> None:
    for phase in ("Progressing", "Paused", "AwaitingApproval", "Failed"):
        assert refusal(kind, release(phase, "canary")) is None
    for phase in ("Succeeded", "RolledBack", "Initializing"):
        assert (refusal(kind, release(phase)) or "").startswith("no rollout in progress")


def test_pause_and_resume_follow_the_pause_request_and_point_at_spec_paused() -> None:
    assert refusal("pause", release("Progressing", "canary")) is None
    assert "already paused" in (refusal("pause", release("Paused", "canary", pausedByRequest=True)) or "")
    assert "already stopped" in (refusal("pause", release("Failed", "canary")) or "")
    assert refusal("resume", release("Paused", "canary", pausedByRequest=True)) is None
    by_spec = release("Paused", "canary")
    by_spec["spec"]["paused"] = True
    assert "spec.paused is true" in (refusal("resume", by_spec) or "")
    assert refusal("resume", release("Progressing", "canary")) == "not paused: the release is Progressing"


def test_approve_names_the_current_stage_and_the_others_carry_the_time() -> None:
    assert annotation_value("approve", release("AwaitingApproval", "ab"), None, NOW) == "ab"
    assert annotation_value("approve", release("AwaitingApproval", "ab"), "ab", NOW) == "ab"
    assert annotation_value("abort", release("Progressing", "canary"), None, NOW) == "2026-12-02T12:00:00Z"
