"""The chaos invariants (devstack.chaos) on recorded observations: each one passes a sound trial and catches its violation.

The audit lines in tests/unit/data/chaos_audit.jsonl.gz were written by
devstack's kube-apiserver during a lease-steal trial on the operator before
its fencing fix (the Lease's lines and the replicas' writes around the
theft, unedited; chaos_audit.json says what they hold); the other records
are the shape a trial records, written out.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from devstack import audit
from devstack.audit import AuditEntry
from devstack.chaos import (
    DeploymentSnapshot,
    DeploymentView,
    LeaseRef,
    TrialRecord,
    Window,
    applies_cut,
    check_history_complete,
    check_lease_fencing,
    check_no_promotion_during_outage,
    check_observed,
    check_outcome,
    check_single_candidate,
    check_stable_capacity,
    check_trial,
    deployment_view,
    parse_stamp,
    writes_while_another_held,
)

DATA = Path(__file__).parent / "data"
STAGES = ("smoke", "canary", "full")
LEASE = LeaseRef("default", "chaos-lease", duration=6.0)
T0 = 1_800_000_000.0


def _history(
    *entries: tuple[str, str | None], version: int = 2, at: str = "2027-01-15T08:00:00Z"
) -> list[dict[str, Any]]:
    return [{"version": version, "outcome": outcome, "stage": stage, "at": at} for outcome, stage in entries]


GOOD_HISTORY = _history(
    ("Started", None),
    ("SmokePassed", "smoke"),
    ("StageCompleted", "smoke"),
    ("StageCompleted", "canary"),
    ("StageCompleted", "full"),
    ("Promoted", None),
)
BAD_HISTORY = _history(
    ("Started", None), ("SmokePassed", "smoke"), ("StageCompleted", "smoke"), ("RolledBack", "canary"), version=3
)


def _deployment(version: int, role: str, replicas: int, ready: int) -> DeploymentView:
    return DeploymentView(f"digits-v{version}", version, role, replicas, ready)


def _snapshot(offset: float, *deployments: DeploymentView) -> DeploymentSnapshot:
    return DeploymentSnapshot(T0 + offset, tuple(deployments))


# ---- outcome ------------------------------------------------------------------------------------------------------


def test_outcome_accepts_the_good_model_promoted_and_the_bad_one_rolled_back() -> None:
    assert check_outcome({"phase": "Succeeded", "stableVersion": 2}, "Succeeded", 1, 2) == []
    assert check_outcome({"phase": "RolledBack", "stableVersion": 1}, "RolledBack", 1, 3) == []


@pytest.mark.parametrize(
    "final",
    [
        {"phase": "RolledBack", "stableVersion": 1},
        {"phase": "Succeeded", "stableVersion": 1},
        {"phase": "Progressing", "stableVersion": 1, "candidateVersion": 2},
        {"phase": "Succeeded", "stableVersion": 2, "candidateVersion": 2},
    ],
)
def test_outcome_catches_a_good_model_that_did_not_end_promoted(final: dict[str, Any]) -> None:
    [violation] = check_outcome(final, "Succeeded", 1, 2)
    assert violation.invariant == "outcome" and f"phase {final['phase']}" in violation.evidence


def test_outcome_catches_a_bad_model_promoted() -> None:
    [violation] = check_outcome({"phase": "Succeeded", "stableVersion": 3}, "RolledBack", 1, 3)
    assert "expected RolledBack with v1 stable" in violation.evidence


# ---- single candidate -----------------------------------------------------------------------------------------------


def test_single_candidate_allows_a_retired_canary_scaled_to_zero_beside_the_live_one() -> None:
    snapshots = [
        _snapshot(0, _deployment(1, "stable", 2, 2), _deployment(2, "canary", 0, 0), _deployment(3, "canary", 1, 1))
    ]
    assert check_single_candidate(snapshots) == []


def test_single_candidate_catches_two_canaries_with_pods_at_the_moment_seen() -> None:
    snapshots = [
        _snapshot(0, _deployment(1, "stable", 2, 2), _deployment(2, "canary", 1, 1)),
        _snapshot(1.5, _deployment(1, "stable", 2, 2), _deployment(2, "canary", 1, 1), _deployment(3, "canary", 1, 0)),
    ]
    [violation] = check_single_candidate(snapshots)
    assert "['digits-v2', 'digits-v3'] both have pods" in violation.evidence
    assert audit.format_moment(T0 + 1.5) in violation.evidence


# ---- stable capacity ----------------------------------------------------------------------------------------------


PROMOTION = [
    _snapshot(0, _deployment(1, "stable", 2, 2)),
    _snapshot(1, _deployment(1, "stable", 2, 2), _deployment(2, "canary", 1, 0)),
    _snapshot(2, _deployment(1, "stable", 2, 2), _deployment(2, "canary", 2, 2)),
    _snapshot(3, _deployment(1, "canary", 2, 2), _deployment(2, "stable", 2, 2)),
    _snapshot(4, _deployment(1, "canary", 0, 0), _deployment(2, "stable", 2, 2)),
]


def test_stable_capacity_holds_until_promotion_and_lets_the_old_version_go_after() -> None:
    assert check_stable_capacity(PROMOTION, 1, 2, capacity=2) == []


def test_stable_capacity_catches_the_stable_deployment_losing_a_ready_pod_before_promotion() -> None:
    shrunk = [*PROMOTION[:1], _snapshot(1, _deployment(1, "stable", 2, 1), _deployment(2, "canary", 1, 0))]
    [violation] = check_stable_capacity(shrunk, 1, 2, capacity=2)
    assert "digits-v1 role 'stable', 2 replicas, 1 ready; needs 2 serving" in violation.evidence


def test_stable_capacity_catches_a_stable_deployment_scaled_down_or_gone_while_the_candidate_is_judged() -> None:
    snapshots = [
        _snapshot(0, _deployment(1, "stable", 1, 1), _deployment(3, "canary", 1, 1)),
        _snapshot(1, _deployment(3, "canary", 1, 1)),
    ]
    violations = check_stable_capacity(snapshots, 1, 3, capacity=2)
    assert len(violations) == 2
    assert "1 replicas" in violations[0].evidence and "v1's Deployment is gone" in violations[1].evidence


# ---- no promotion while Prometheus is down --------------------------------------------------------------------------


def test_no_promotion_during_outage_catches_a_promotion_stamped_inside_the_outage() -> None:
    at = parse_stamp("2027-01-15T08:00:10Z")
    history = _history(("Started", None), ("Promoted", None), at="2027-01-15T08:00:10Z")
    [violation] = check_no_promotion_during_outage(history, 2, [Window(at - 3.4, at + 6.0)])
    assert "v2 promoted at 2027-01-15T08:00:10Z while Prometheus was down" in violation.evidence


def test_no_promotion_during_outage_allows_a_pass_that_began_before_prometheus_went_down_or_after_it_returned() -> None:
    at = parse_stamp("2027-01-15T08:00:10Z")
    history = _history(("Promoted", None), at="2027-01-15T08:00:10Z")
    # The pass began within [10, 11): it may have measured before 10.5, or after the return at 10.9.
    assert check_no_promotion_during_outage(history, 2, [Window(at + 0.5, at + 20)]) == []
    assert check_no_promotion_during_outage(history, 2, [Window(at - 20, at + 0.9)]) == []


# ---- history complete -----------------------------------------------------------------------------------------------


def test_history_complete_accepts_a_promotion_and_a_rollback_with_one_entry_per_decision() -> None:
    assert check_history_complete(GOOD_HISTORY, 2, STAGES, "Succeeded") == []
    assert check_history_complete(BAD_HISTORY, 3, STAGES, "RolledBack") == []


@pytest.mark.parametrize(
    ("history", "problem"),
    [
        (GOOD_HISTORY[:3] + GOOD_HISTORY[2:], "every stage completed once, in order"),
        (GOOD_HISTORY[:3] + GOOD_HISTORY[4:], "every stage completed once, in order"),
        (GOOD_HISTORY + GOOD_HISTORY[-1:], "exactly one verdict"),
        (GOOD_HISTORY[:1] + GOOD_HISTORY, "start exactly once"),
        (GOOD_HISTORY[:-1], "exactly one verdict, Promoted, last"),
        (GOOD_HISTORY[:2] + GOOD_HISTORY[1:], "a smoke test passed twice"),
        (
            GOOD_HISTORY[:2] + _history(("Superseded", "smoke")) + GOOD_HISTORY[2:],
            "unexpected decisions ['Superseded']",
        ),
        (GOOD_HISTORY + _history(("Promoted", None), version=1), "other versions"),
    ],
    ids=["stage twice", "stage lost", "two verdicts", "started twice", "no verdict", "smoke twice", "other", "version"],
)
def test_history_complete_catches_a_decision_taken_twice_or_lost(history: list[dict[str, Any]], problem: str) -> None:
    [violation] = check_history_complete(history, 2, STAGES, "Succeeded")
    assert problem in violation.evidence


def test_history_complete_catches_a_rollback_that_skipped_a_stage() -> None:
    skipped = _history(("Started", None), ("StageCompleted", "canary"), ("RolledBack", "full"), version=3)
    [violation] = check_history_complete(skipped, 3, STAGES, "RolledBack")
    assert "first stages" in violation.evidence


# ---- lease fencing -------------------------------------------------------------------------------------------------


def _lease(user: str, verb: str, at: float, holder: str | None, code: int = 200) -> AuditEntry:
    return AuditEntry(at - 0.002, at, user, verb, "leases", LEASE.namespace, LEASE.name, code, holder)


def _write(user: str, at: float, resource: str = "deployments", code: int = 200) -> AuditEntry:
    return AuditEntry(at, at + 0.003, user, "patch", resource, "chaos-ns", "digits-v2", code)


def test_lease_fencing_accepts_writes_by_the_holder_between_its_renewals() -> None:
    entries = [
        _lease("a", "get", T0, None),
        _lease("a", "update", T0 + 0.01, "a"),
        _write("a", T0 + 1),
        _lease("b", "get", T0 + 1.5, "a"),
        _lease("a", "update", T0 + 2, "a"),
        _write("a", T0 + 7.5, "modelreleases/status"),
        _write("b", T0 + 8, code=403),  # refused: changed nothing
    ]
    assert check_lease_fencing(entries, ["a", "b"], LEASE) == []


def test_lease_fencing_catches_a_replica_that_writes_without_ever_holding_the_lease() -> None:
    entries = [_lease("a", "update", T0, "a"), _lease("b", "get", T0 + 1, "a"), _write("b", T0 + 1.2)]
    [violation] = check_lease_fencing(entries, ["a", "b"], LEASE)
    assert violation.evidence.startswith("b patch deployments chaos-ns/digits-v2 -> 200")
    assert "did not hold Lease default/chaos-lease" in violation.evidence and "named a" in violation.evidence


def test_lease_fencing_catches_the_old_leader_writing_after_its_own_read_named_the_new_holder() -> None:
    entries = [
        _lease("a", "update", T0, "a"),
        _lease("admin", "update", T0 + 1, "b"),  # stolen
        _write("a", T0 + 1.2),  # a does not know yet: allowed
        _lease("b", "get", T0 + 1.5, "b"),
        _lease("b", "update", T0 + 1.51, "b"),
        _write("b", T0 + 2),
        _lease("a", "get", T0 + 2, "b"),  # now a knows
        _write("a", T0 + 2.5),  # within the slack: already in flight
        _write("a", T0 + 4, "modelreleases/status"),
    ]
    [violation] = check_lease_fencing(entries, ["a", "b"], LEASE)
    assert "a patch modelreleases/status" in violation.evidence
    assert "2.0s after its own Lease read" in violation.evidence and "named b" in violation.evidence
    assert "the Lease named b since" in violation.evidence
    assert [e.received for e in writes_while_another_held(entries, ["a", "b"], LEASE)] == [T0 + 1.2, T0 + 2.5, T0 + 4]


def test_lease_fencing_catches_a_frozen_leader_writing_after_its_lease_expired() -> None:
    entries = [
        _lease("a", "update", T0, "a"),
        _write("a", T0 + 0.5, "modelreleases/status"),
        # SIGSTOP here; b takes over once the Lease expired, a is thawed and finishes its pass.
        _lease("b", "update", T0 + 7, "b"),
        _write("b", T0 + 8),
        _write("a", T0 + 12),
    ]
    [violation] = check_lease_fencing(entries, ["a", "b"], LEASE)
    assert (
        "12.0s after its last renewal" in violation.evidence
        and "longer than the lease duration 6s" in violation.evidence
    )


def test_lease_fencing_catches_a_write_after_the_replica_released_the_lease() -> None:
    entries = [_lease("a", "update", T0, "a"), _lease("a", "update", T0 + 1, None), _write("a", T0 + 1.1)]
    [violation] = check_lease_fencing(entries, ["a"], LEASE)
    assert "named nobody (released)" in violation.evidence


def test_lease_fencing_ignores_other_leases_and_failed_renewals() -> None:
    other = AuditEntry(T0 + 1, T0 + 1, "a", "update", "leases", "default", "someone-else", 200, "a")
    entries = [other, _lease("a", "update", T0 + 2, None, code=409), _write("a", T0 + 3)]
    [violation] = check_lease_fencing(entries, ["a"], LEASE)
    assert "did not hold" in violation.evidence


# ---- on the audit log the API server wrote --------------------------------------------------------------------------


def _recorded(tmp_path: Path) -> tuple[list[AuditEntry], dict[str, Any]]:
    log = tmp_path / "audit.log"
    log.write_bytes(gzip.decompress((DATA / "chaos_audit.jsonl.gz").read_bytes()))
    entries, _ = audit.read(log)
    facts = json.loads((DATA / "chaos_audit.json").read_text())
    return entries, facts


def _lease_of(facts: dict[str, Any]) -> LeaseRef:
    return LeaseRef(facts["lease"]["namespace"], facts["lease"]["name"], facts["lease"]["duration"])


def test_audit_entries_parse_users_subresources_and_lease_holders_from_a_real_log(tmp_path: Path) -> None:
    entries, facts = _recorded(tmp_path)
    replicas = facts["replicas"]
    assert {e.user for e in entries} == {*replicas, facts["stolen_by"]}
    assert any(e.resource == "modelreleases/status" and e.verb == "patch" for e in entries)
    reads = [e for e in entries if e.is_lease and e.verb == "get" and e.user in replicas]
    assert reads and all(e.holder in replicas for e in reads)
    [theft] = [e for e in entries if e.user == facts["stolen_by"] and e.is_write]
    assert theft.holder == replicas[1] and theft.resource == "leases"
    assert all(e.received <= e.answered for e in entries)


def test_lease_fencing_on_a_real_log_finds_the_old_leader_writing_after_it_read_the_theft(tmp_path: Path) -> None:
    entries, facts = _recorded(tmp_path)
    violations = check_lease_fencing(entries, facts["replicas"], _lease_of(facts))
    assert len(violations) == facts["stale_writes"], [str(v) for v in violations]
    assert all(v.evidence.startswith(facts["replicas"][0]) for v in violations)
    first = audit.format_moment(facts["first_stale_write_received"])
    learned = audit.format_moment(facts["old_leader_learned_at"])
    assert (
        f"at {first}: 1.6s after its own Lease read at {learned} named {facts['replicas'][1]}" in violations[0].evidence
    )


def test_writes_while_another_held_counts_the_old_leaders_writes_it_could_not_yet_know_were_stale(
    tmp_path: Path,
) -> None:
    entries, facts = _recorded(tmp_path)
    unaware = writes_while_another_held(entries, facts["replicas"], _lease_of(facts))
    assert {e.user for e in unaware} == {facts["replicas"][0]}
    assert len(unaware) > facts["stale_writes"]


def test_applies_cut_tells_a_pass_stopped_between_its_status_write_and_its_last_apply(tmp_path: Path) -> None:
    entries, facts = _recorded(tmp_path)
    leader = facts["replicas"][0]
    status_write = next(e for e in entries if e.user == leader and e.resource == "modelreleases/status")
    route = next(
        e
        for e in entries
        if e.user == leader and e.name == "digits" and e.resource == "services" and e.received > status_write.received
    )
    assert applies_cut(entries, leader, "digits", status_write.received + 0.001)
    assert applies_cut(entries, leader, "digits", route.received - 0.001)
    assert not applies_cut(entries, leader, "digits", route.received + 0.001)
    assert not applies_cut(entries, leader, "digits", status_write.received - 0.001)


def test_parse_event_skips_the_request_received_stage_and_reads_a_released_lease_as_no_holder() -> None:
    assert audit.parse_event({"stage": "RequestReceived"}) is None
    released = {
        "stage": "ResponseComplete",
        "verb": "update",
        "user": {"username": "a"},
        "objectRef": {"resource": "leases", "namespace": "default", "name": "l"},
        "responseStatus": {"code": 200},
        "responseObject": {"kind": "Lease", "spec": {"leaseDurationSeconds": 6}},
        "requestReceivedTimestamp": "2027-01-15T08:00:00.000001Z",
        "stageTimestamp": "2027-01-15T08:00:00.004000Z",
    }
    entry = audit.parse_event(released)
    assert entry is not None and entry.holder is None and entry.is_lease and entry.is_write
    assert entry.answered - entry.received == pytest.approx(0.003999, abs=1e-6)


# ---- a whole trial --------------------------------------------------------------------------------------------------


def _record(**changes: Any) -> TrialRecord:
    base: dict[str, Any] = dict(
        fault="none",
        expected_phase="Succeeded",
        stable_version=1,
        candidate_version=2,
        capacity=2,
        stages=STAGES,
        history_start=1,
        final_status={
            "phase": "Succeeded",
            "stableVersion": 2,
            "history": _history(("Promoted", None), version=1) + GOOD_HISTORY,
        },
        deployments=PROMOTION,
        audit=[_lease("a", "update", T0, "a"), _write("a", T0 + 1)],
        replicas=("a",),
        lease=LEASE,
    )
    return TrialRecord(**{**base, **changes})


def test_a_sound_trial_has_no_violations_and_its_history_before_the_rollout_is_not_judged() -> None:
    assert check_trial(_record()) == []


def test_a_trial_that_recorded_nothing_vouches_for_nothing() -> None:
    violations = check_observed(_record(deployments=PROMOTION[:1], audit=[]))
    assert [v.invariant for v in violations] == ["observed", "observed"]


def test_deployment_view_reads_labels_replicas_and_readiness_from_the_api_json() -> None:
    view = deployment_view(
        {
            "metadata": {
                "name": "digits-v2",
                "labels": {"modelrelease.io/version": "2", "modelrelease.io/role": "canary"},
            },
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 1},
        }
    )
    assert view == DeploymentView("digits-v2", 2, "canary", 2, 1) and view.serving == 1
