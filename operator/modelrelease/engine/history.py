"""status.history: an append-only log of decisions and manual acts, capped so status stays small."""

from __future__ import annotations

from modelrelease.api.status import HistoryEntry

HISTORY_LIMIT = 50
"""Entries kept; etcd objects are limited in size and the events carry the same story."""


def append_history(history: list[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    return [*history, entry][-HISTORY_LIMIT:]


def versions_by_recency(history: list[HistoryEntry]) -> list[int]:
    """Versions from most to least recently mentioned, each once."""
    seen: list[int] = []
    for entry in reversed(history):
        if entry.version not in seen:
            seen.append(entry.version)
    return seen
