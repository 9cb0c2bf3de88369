"""Structured logs: every line says which release, version and stage it is about.

Why context variables: a pass runs as one asyncio task per release, and a
context variable set at the start of the pass follows every log call made
from it (ours, kopf's, the client libraries'), without threading a logger
through each function.  Lines about no release carry empty fields.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]

_release: ContextVar[str] = ContextVar("release", default="")
_version: ContextVar[str] = ContextVar("version", default="")
_stage: ContextVar[str] = ContextVar("stage", default="")


@contextlib.contextmanager
def release_context(release: str, version: int | None = None, stage: str | None = None) -> Iterator[None]:
    tokens = (
        _release.set(release),
        _version.set("" if version is None else str(version)),
        _stage.set(stage or ""),
    )
    try:
        yield
    finally:
        _stage.reset(tokens[2])
        _version.reset(tokens[1])
        _release.reset(tokens[0])


def set_rollout(version: int | None, stage: str | None) -> None:
    """Refine the current pass's context once the release's status is known."""
    _version.set("" if version is None else str(version))
    _stage.set(stage or "")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.release = _release.get()
        record.version = _version.get()
        record.stage = _stage.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "release": getattr(record, "release", ""),
            "version": getattr(record, "version", ""),
            "stage": getattr(record, "stage", ""),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s release=%(release)s version=%(version)s stage=%(stage)s %(message)s"


def configure(log_format: LogFormat, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kopf logs each watch event at DEBUG and each handler call at INFO; the operator logs its own decisions.
    logging.getLogger("kopf").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
