"""Kubernetes-style conditions: lastTransitionTime moves only when the status flips.

Why: ``kubectl wait --for=condition=...`` and dashboards compute "for how
long" from lastTransitionTime, so a reason or message update must not reset it.
"""

from __future__ import annotations

from modelrelease.api.status import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
ANALYSIS = "Analysis"


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: str,
    generation: int,
) -> list[Condition]:
    """Return the conditions with ``type_`` set; the order of the others is kept."""
    previous = next((c for c in conditions if c.type == type_), None)
    flipped = previous is None or previous.status != status
    transition = now if flipped or previous is None else previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
