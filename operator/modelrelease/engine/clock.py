"""Timestamps as Kubernetes writes them, and the arithmetic the engine needs on them.

Why strings: status is stored as JSON on the API server, and RFC 3339 UTC
with whole seconds is what kubectl and every other controller show.  The
engine never reads the clock; ``now`` is always passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def as_utc(moment: datetime) -> datetime:
    """Treat a naive datetime as UTC, so callers cannot mix zones by accident."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return as_utc(moment).strftime(_FORMAT)


def parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def elapsed_since(text: str | None, now: datetime) -> timedelta | None:
    """Time since a stored timestamp; None when nothing was stored."""
    return None if text is None else as_utc(now) - parse_time(text)
