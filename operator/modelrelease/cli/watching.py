"""``modelrelease watch``: the status screen, live, until the rollout ends; the exit code says how it ended.

Why watches and not polling: the screen is re-read only when the release,
its Deployments, its pods or its events change (``Cluster.watch``), so a
hundred people watching a rollout cost the API server a hundred idle
watches, not a hundred reads a second.  On a terminal the screen is redrawn
in place (rich ``Live``), and the stage's clock moves every second from the
last read; piped (a CI log), one plain line is printed per change of state
and one per new history entry, never a redraw.

Exit codes, for a pipeline that waits on a release: 0 when it ends
Succeeded, 1 when it ends RolledBack or Failed, 2 when ``--timeout`` passes
first.  A phase counts only once the operator has seen the current spec
(``status.observedGeneration``), so ``kubectl apply`` followed at once by
``watch`` waits for the new rollout instead of exiting on the last one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from modelrelease.cli.cluster import Cluster, Snapshot
from modelrelease.cli.render import print_blocks, render_rich, status_blocks, wants_rich
from modelrelease.cli.view import StatusData, exit_code_of, is_finished, status_data

TIMED_OUT = 2


def summary_line(data: StatusData, now: datetime) -> str:
    """One line for a log: phase, versions, stage, weight, checks, then the operator's message."""
    parts = [data.phase]
    if data.candidate_version is not None:
        parts.append(f"v{data.stable_version} -> v{data.candidate_version}")
    elif data.stable_version is not None:
        parts.append(f"stable v{data.stable_version}")
    stage = data.stage
    if stage is not None:
        position = f" ({stage['index'] + 1}/{stage['count']})" if stage["count"] else ""
        parts.append(f"stage {stage['name']}{position}")
        parts.append(f"weight {stage['weight']}/{stage['actualWeight']}")
        needed = stage["checksNeeded"]
        parts.append(f"checks {stage['checksPassed']}/{needed if needed is not None else '?'}")
    line = " ".join(parts)
    return f"{line} | {data.message}" if data.message else line


def watch(
    cluster: Cluster,
    namespace: str,
    name: str,
    stream: IO[str],
    timeout: float | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    stop = threading.Event()
    deadline = time.monotonic() + timeout if timeout else None
    fancy = wants_rich(stream)
    snapshot = cluster.snapshot(namespace, name)
    printer = _LiveScreen(stream) if fancy else _LogLines(stream)
    try:
        printer.show(snapshot, clock())
        if is_finished(snapshot.release):
            return printer.finish(snapshot, clock())
        for changed in cluster.watch(namespace, name, stop):
            if deadline is not None and time.monotonic() > deadline:
                printer.note(f"timed out after {timeout:g}s; the rollout goes on")
                return TIMED_OUT
            if changed & {"pods", "deployments"}:
                snapshot = cluster.snapshot(namespace, name)
            elif changed != {"tick"}:
                snapshot = _reread(cluster, namespace, name, snapshot)
            printer.show(snapshot, clock())
            if is_finished(snapshot.release):
                return printer.finish(snapshot, clock())
        return TIMED_OUT
    finally:
        stop.set()
        printer.close()


def _reread(cluster: Cluster, namespace: str, name: str, previous: Snapshot) -> Snapshot:
    """A new read after a release or event change; the pods' model states are kept (asking costs a round trip)."""
    fresh = cluster.snapshot(namespace, name, model_states=False)
    return Snapshot(fresh.release, fresh.deployments, fresh.pods, fresh.events, previous.model_states)


class _LiveScreen:
    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def show(self, snapshot: Snapshot, now: datetime) -> None:
        self.live.update(render_rich(status_blocks(status_data(snapshot, now), fancy=True)), refresh=True)

    def note(self, text: str) -> None:
        self.live.stop()
        self.console.print(text)

    def finish(self, snapshot: Snapshot, now: datetime) -> int:
        self.show(snapshot, now)
        self.live.stop()
        data = status_data(snapshot, now)
        self.console.print(f"{data.namespace}/{data.name} ended {data.phase}: {data.message}")
        return exit_code_of(snapshot.release)

    def close(self) -> None:
        self.live.stop()


class _LogLines:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""
        self.history_seen: set[tuple[Any, ...]] = set()
        self.first = True

    def _write(self, text: str, now: datetime) -> None:
        self.stream.write(f"{now.strftime('%H:%M:%S')} {text}\n")
        self.stream.flush()

    def show(self, snapshot: Snapshot, now: datetime) -> None:
        data = status_data(snapshot, now)
        for entry in (snapshot.release.get("status") or {}).get("history", []):
            key = tuple(sorted((k, str(v)) for k, v in entry.items()))
            if key in self.history_seen:
                continue
            self.history_seen.add(key)
            if not self.first:
                stage = f" {entry['stage']}" if entry.get("stage") else ""
                self._write(
                    f"history: v{entry.get('version')} {entry.get('outcome')}{stage}: {entry.get('message', '')}", now
                )
        self.first = False
        line = summary_line(data, now)
        if line != self.last:
            self.last = line
            self._write(line, now)

    def note(self, text: str) -> None:
        self._write(text, datetime.now(UTC))

    def finish(self, snapshot: Snapshot, now: datetime) -> int:
        data = status_data(snapshot, now)
        self._write(f"{data.namespace}/{data.name} ended {data.phase}: {data.message}", now)
        return exit_code_of(snapshot.release)

    def close(self) -> None:
        return None


def print_status(snapshot: Snapshot, now: datetime, stream: IO[str]) -> None:
    print_blocks(status_blocks(status_data(snapshot, now), fancy=wants_rich(stream)), stream)
