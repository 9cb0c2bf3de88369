"""Chaos: one seeded trial per kind of fault, each a whole rollout judged on every invariant.

Each trial (devstack.chaos_trials.run_trial) rolls a release from v1 to the
good model (v2, must end Succeeded) or the bad one (v3, must end RolledBack)
while one fault is injected, timed on the release's observed status
changes.  Every trial is checked on every invariant of devstack.chaos:
outcome, never two candidates, the stable Deployment at full capacity until
promotion, no promotion while Prometheus was down, ``status.history`` one
entry per decision, and no write from a replica that did not hold the Lease
(from the API server's audit log).  Each test also asserts that its fault
bit: a trial whose fault missed the rollout proves nothing.

The trials run on a private devstack (restarting the shared API server or
etcd would break other sessions), all of them in the module's fixture:
those whose fault stays within their own release two at a time, the
cluster-wide ones (API server, etcd, Prometheus) alone.  ``make
bench-chaos`` runs many more, one at a time, and times them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import chaos_trials
from devstack.chaos_trials import TrialResult

# All trials run in the module's first test (local faults two at a time): the budget is the module's.
pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(900)]

SEED = 20261202
PLAN: list[chaos_trials.Plan] = [
    ("sigkill", "good", SEED),
    ("storm", "bad", SEED + 1),
    ("lease-steal", "good", SEED + 2),
    ("leader-sigstop", "good", SEED + 3),
    ("apiserver", "bad", SEED + 4),
    ("etcd", "good", SEED + 5),
    ("prometheus", "good", SEED + 6),
]


@pytest.fixture(scope="module")
def trials() -> Iterator[dict[str, TrialResult | Exception]]:
    with chaos_trials.private_devstack() as env:
        results = chaos_trials.run_trials(env, PLAN, parallel=2)
        yield {fault: result for (fault, _, _), result in zip(PLAN, results, strict=True)}


def _trial(trials: dict[str, TrialResult | Exception], fault: str) -> TrialResult:
    result = trials[fault]
    if isinstance(result, Exception):
        raise result
    print(f"\n{result.summary()}")
    return result


def _logs(result: TrialResult, lines: int = 60) -> str:
    parts = []
    for path in result.operator_logs:
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(no log)"]
        parts.append(f"----- {path.name} -----\n" + "\n".join(text))
    return "\n".join(parts)


def _assert_invariants_held(result: TrialResult) -> None:
    assert result.notes.get("landed"), f"the fault missed the rollout: {result.summary()}"
    assert result.seconds is not None, f"the rollout did not end: {result.summary()}\n{_logs(result)}"
    assert not result.violations, f"{result.summary()}\n{_logs(result)}"


def test_operator_sigkilled_three_times_mid_pass_still_promotes_the_good_model(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "sigkill")
    kills = result.notes.get("kills", [])
    assert len(kills) == 3, f"every kill must land in the rollout: {kills}"
    assert result.notes["kills_cutting_applies"] >= 1, f"no kill between a status write and its applies: {result.notes}"
    _assert_invariants_held(result)


def test_api_server_killed_and_restarted_mid_rollout_still_rolls_back_the_bad_model(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "apiserver")
    assert "down" in result.notes, f"the API server restart missed the rollout: {result.notes}"
    _assert_invariants_held(result)


def test_etcd_killed_and_restarted_mid_rollout_keeps_the_release_and_promotes_the_good_model(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "etcd")
    assert "down" in result.notes, f"the etcd restart missed the rollout: {result.notes}"
    # The history from before the restart is still there: etcd's data survived.
    assert result.record.final_status["history"][0]["reason"] == "InitialVersion"
    _assert_invariants_held(result)


def test_prometheus_down_past_the_inconclusive_limit_pauses_and_never_promotes_until_it_returns(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "prometheus")
    assert result.notes.get("paused"), f"the release must pause while Prometheus is down: {result.notes}"
    _assert_invariants_held(result)


def test_conflict_storm_on_status_and_annotations_still_rolls_back_the_bad_model(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "storm")
    assert result.notes.get("operator_409s", 0) > 0, f"the storm caused no conflict: {result.notes}"
    _assert_invariants_held(result)


def test_lease_stolen_mid_pass_the_old_leader_stops_writing_once_it_reads_the_lease(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "lease-steal")
    assert result.notes.get("writes_by_new_holder", 0) > 0, f"the other replica never took over: {result.notes}"
    _assert_invariants_held(result)


def test_leader_frozen_past_its_lease_never_writes_after_it_is_thawed(
    trials: dict[str, TrialResult | Exception],
) -> None:
    result = _trial(trials, "leader-sigstop")
    assert result.notes.get("frozen_seconds", 0) > chaos_trials.LEASE_SECONDS, result.notes
    _assert_invariants_held(result)
