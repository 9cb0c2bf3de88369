"""The phase graph and the condition helper, checked on their own."""

from __future__ import annotations

import pytest

from modelrelease.api import Condition, Phase
from modelrelease.engine import ALLOWED_TRANSITIONS, IllegalTransition
from modelrelease.engine.conditions import set_condition
from modelrelease.engine.phases import check_transition


def test_every_phase_has_its_outgoing_edges_written_down() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(Phase)
    assert all(targets <= set(Phase) for targets in ALLOWED_TRANSITIONS.values())


def test_nothing_ever_goes_back_to_initializing() -> None:
    assert all(
        Phase.INITIALIZING not in targets for old, targets in ALLOWED_TRANSITIONS.items() if old != "Initializing"
    )


def test_a_rolled_back_release_cannot_fail_or_pause_without_a_new_rollout() -> None:
    for target in (Phase.FAILED, Phase.PAUSED, Phase.AWAITING_APPROVAL):
        with pytest.raises(IllegalTransition):
            check_transition(Phase.ROLLED_BACK, target)


def test_a_succeeded_release_only_starts_a_new_rollout() -> None:
    assert ALLOWED_TRANSITIONS[Phase.SUCCEEDED] == {Phase.SUCCEEDED, Phase.PROGRESSING}


def test_condition_transition_time_changes_only_when_the_status_flips() -> None:
    first = set_condition([], "Ready", "True", "A", "a", "2026-01-01T00:00:00Z", 1)
    reworded = set_condition(first, "Ready", "True", "B", "b", "2026-01-01T00:05:00Z", 2)
    assert reworded[0].last_transition_time == "2026-01-01T00:00:00Z"
    assert (reworded[0].reason, reworded[0].message, reworded[0].observed_generation) == ("B", "b", 2)
    flipped = set_condition(reworded, "Ready", "False", "B", "b", "2026-01-01T00:09:00Z", 2)
    assert flipped[0].last_transition_time == "2026-01-01T00:09:00Z"


def test_setting_one_condition_keeps_the_others_in_place() -> None:
    others = [Condition(type="Ready", status="True"), Condition(type="Analysis", status="Unknown")]
    updated = set_condition(others, "Progressing", "True", "R", "m", "2026-01-01T00:00:00Z", 1)
    assert [c.type for c in updated] == ["Ready", "Analysis", "Progressing"]
    assert updated[:2] == others
