"""What a pass has to tell: notices derived from the engine's output, never decided anywhere else.

Why from ``status.history`` and the phase: the engine records every
decision worth a notification there (Started, StageCompleted, Promoted,
RolledBack, Aborted, Failed) in the order it took them, and the phase says
when a stage waits for an approval.  Comparing the status a pass read with
the one it wrote therefore gives the pass's transitions in order, with no
rule duplicated outside the engine.  The function is pure, so a unit test
pins each case.  It is called only after the status write succeeded: a
pass that lost a conflict tells nothing, and the pass that decides again
tells it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrelease.api.spec import ModelReleaseSpec, NotificationEvent
from modelrelease.api.status import HistoryEntry, ModelReleaseStatus, Phase
from modelrelease.engine.conditions import PROGRESSING, find_condition


@dataclass(frozen=True)
class Notice:
    """One thing that happened to a release, in the words every body format is written from."""

    kind: NotificationEvent
    version: int
    """The version it is about (the candidate, or the version promoted or rolled back)."""
    phase: str
    stable_version: int | None
    candidate_version: int | None
    from_stage: str | None = None
    to_stage: str | None = None
    reason: str = ""
    message: str = ""
    at: str | None = None


def notices(
    spec: ModelReleaseSpec, before: ModelReleaseStatus, after: ModelReleaseStatus, at: str | None = None
) -> tuple[Notice, ...]:
    """The notices of the pass that turned ``before`` into ``after``, in the order the engine decided them.

    ``at`` (the pass's time) dates a wait; a history entry carries its own time.
    """
    found = [notice for entry in _new_entries(before, after) if (notice := _of_entry(spec, after, entry)) is not None]
    waiting = _approval_wait(before, after, at)
    if waiting is not None:
        found.append(waiting)
    return tuple(found)


def _new_entries(before: ModelReleaseStatus, after: ModelReleaseStatus) -> list[HistoryEntry]:
    """Entries the pass appended (history is append-only; capped, so compared by value, not by length)."""
    return [entry for entry in after.history if entry not in before.history]


def _of_entry(spec: ModelReleaseSpec, after: ModelReleaseStatus, entry: HistoryEntry) -> Notice | None:
    def notice(kind: NotificationEvent, from_stage: str | None = None, to_stage: str | None = None) -> Notice:
        return Notice(
            kind=kind,
            version=entry.version,
            phase=after.phase.value,
            stable_version=after.stable_version,
            candidate_version=after.candidate_version,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=entry.reason,
            message=entry.message,
            at=entry.at,
        )

    match entry.outcome:
        case "Started":
            return notice("RolloutStarted", to_stage=spec.stages[0].name if spec.stages else None)
        case "StageCompleted":
            following = _stage_after(spec, entry.stage)
            # The last stage completed is a promotion, which has a notice of its own.
            return notice("StageChanged", entry.stage, following) if following is not None else None
        case "Promoted":
            return notice("Promoted")
        case "RolledBack" | "Aborted":
            return notice("RolledBack", from_stage=entry.stage)
        case "Failed":
            return notice("Failed", from_stage=entry.stage)
    return None


def _stage_after(spec: ModelReleaseSpec, name: str | None) -> str | None:
    names = [stage.name for stage in spec.stages]
    if name not in names:
        return None
    index = names.index(name)
    return names[index + 1] if index + 1 < len(names) else None


def _approval_wait(before: ModelReleaseStatus, after: ModelReleaseStatus, at: str | None) -> Notice | None:
    """The release began waiting for an approval (or a confirmPromotion yes) in this pass."""
    if after.phase != Phase.AWAITING_APPROVAL or after.candidate_version is None:
        return None
    where = (after.candidate_version, after.stage.name if after.stage else None)
    was = (before.candidate_version, before.stage.name if before.stage else None)
    if before.phase == Phase.AWAITING_APPROVAL and was == where:
        return None
    progressing = find_condition(after.conditions, PROGRESSING)
    return Notice(
        kind="AwaitingApproval",
        version=after.candidate_version,
        phase=after.phase.value,
        stable_version=after.stable_version,
        candidate_version=after.candidate_version,
        from_stage=where[1],
        to_stage=where[1],
        reason=progressing.reason if progressing is not None else "AwaitingApproval",
        message=after.message,
        at=at,
    )
