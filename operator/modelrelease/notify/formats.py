"""The bodies a notification is posted as: a generic JSON object, or Slack's incoming-webhook message.

Why two: a generic body is what a script, a chat bridge or an incident tool
reads field by field (the same words as the release's status); Slack's
incoming webhooks accept only their own shape (``text``, optionally
``blocks``), and most chat tools (Mattermost, Rocket.Chat, Discord's
``/slack`` endpoint) accept that shape too.  Both are pure functions of
one notice, so a unit test pins them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelrelease.notify.events import Notice

Body = Mapping[str, Any]


def generic_body(namespace: str, release: str, notice: Notice) -> Body:
    """Every fact of the notice under a stable name; absent facts are null, never left out."""
    return {
        "kind": "ModelReleaseNotification",
        "release": release,
        "namespace": namespace,
        "event": notice.kind,
        "version": notice.version,
        "fromStage": notice.from_stage,
        "toStage": notice.to_stage,
        "stableVersion": notice.stable_version,
        "candidateVersion": notice.candidate_version,
        "phase": notice.phase,
        "reason": notice.reason,
        "message": notice.message,
        "time": notice.at,
    }


def headline(namespace: str, release: str, notice: Notice) -> str:
    """One line a person reads first: which release, which version, what happened."""
    who = f"{namespace}/{release} v{notice.version}"
    match notice.kind:
        case "RolloutStarted":
            first = f" (first stage {notice.to_stage})" if notice.to_stage else ""
            return f"{who}: rollout started{first}"
        case "StageChanged":
            return f"{who}: stage {notice.from_stage} passed, entering {notice.to_stage}"
        case "AwaitingApproval":
            return f"{who}: waiting for approval at stage {notice.to_stage}"
        case "Promoted":
            return f"{who}: promoted to stable"
        case "RolledBack":
            where = f" at stage {notice.from_stage}" if notice.from_stage else ""
            return f"{who}: rolled back{where}"
        case "Failed":
            where = f" at stage {notice.from_stage}" if notice.from_stage else ""
            return f"{who}: failed{where}, waiting for abort, retry or promote"
    return f"{who}: {notice.kind}"  # pragma: no cover - every kind is matched above


ICONS = {
    "RolloutStarted": ":rocket:",
    "StageChanged": ":arrow_forward:",
    "AwaitingApproval": ":raised_hand:",
    "Promoted": ":white_check_mark:",
    "RolledBack": ":rewind:",
    "Failed": ":x:",
}


def slack_body(namespace: str, release: str, notice: Notice) -> Body:
    """Slack's incoming-webhook JSON: ``text`` (also the fallback of clients without blocks) and two blocks."""
    line = f"{ICONS.get(notice.kind, '')} {_escape(headline(namespace, release, notice))}".strip()
    details = [f"*phase* {_escape(notice.phase)}"]
    if notice.reason:
        details.append(f"*reason* {_escape(notice.reason)}")
    if notice.stable_version is not None:
        details.append(f"*stable* v{notice.stable_version}")
    if notice.at:
        details.append(_escape(notice.at))
    text = line if not notice.message else f"{line}\n{_escape(notice.message)}"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(details)}]},
        ],
    }


def _escape(text: str) -> str:
    """Slack's three control characters in message text (its formatting rules): &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FORMATS: Mapping[str, Callable[[str, str, Notice], Body]] = {"generic": generic_body, "slack": slack_body}


def body_of(format_name: str, namespace: str, release: str, notice: Notice) -> Body:
    return FORMATS[format_name](namespace, release, notice)
