"""The phase graph, written down as data so code and tests check the same thing.

Starting a rollout is a whole pass on its own (the new candidate's
Deployment does not exist yet, so nothing else about it can be judged), which
is why Succeeded and RolledBack lead only to Progressing (or, when Git reverts
to the stable version, straight back to Succeeded).
"""

from __future__ import annotations

from collections.abc import Mapping

from modelrelease.api.status import Phase

ACTIVE_PHASES: frozenset[Phase] = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL})
"""Phases in which a candidate is being judged and may advance."""

TERMINAL_PHASES: frozenset[Phase] = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK})
"""Phases with no candidate: only a spec change or a retry leaves them."""

BAKING_NEXT: frozenset[Phase] = frozenset({Phase.BAKING, Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.PROGRESSING})
"""A bake ends passed or rolled back; a new version in Git ends it early (its rollout starts)."""

_IN_ROLLOUT = {
    Phase.PROGRESSING,
    Phase.PAUSED,
    Phase.AWAITING_APPROVAL,
    Phase.SUCCEEDED,
    Phase.ROLLED_BACK,
    Phase.FAILED,
    Phase.BAKING,
}

ALLOWED_TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.INITIALIZING: frozenset({Phase.INITIALIZING, Phase.SUCCEEDED}),
    Phase.SUCCEEDED: frozenset({Phase.SUCCEEDED, Phase.PROGRESSING}),
    Phase.PROGRESSING: frozenset(_IN_ROLLOUT),
    Phase.PAUSED: frozenset(_IN_ROLLOUT),
    Phase.AWAITING_APPROVAL: frozenset(_IN_ROLLOUT),
    Phase.ROLLED_BACK: frozenset({Phase.ROLLED_BACK, Phase.PROGRESSING, Phase.SUCCEEDED}),
    Phase.BAKING: BAKING_NEXT,
    # Baking: a promote request, once the spec turned automatic rollback (and a bake) on.
    Phase.FAILED: frozenset({Phase.FAILED, Phase.PROGRESSING, Phase.ROLLED_BACK, Phase.SUCCEEDED, Phase.BAKING}),
}


class IllegalTransition(AssertionError):
    """The engine tried to move along an edge the graph does not have: a bug, never a user error."""


def is_allowed(old: Phase, new: Phase) -> bool:
    return new in ALLOWED_TRANSITIONS[old]


def check_transition(old: Phase, new: Phase) -> None:
    if not is_allowed(old, new):
        raise IllegalTransition(f"phase {old} may not become {new}")
