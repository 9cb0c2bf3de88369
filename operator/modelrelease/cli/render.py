"""Laying the views out: rich on a terminal, plain aligned text otherwise, JSON or YAML on request.

Why one document model for both: a view is built once as blocks (key/value
lists and tables) and drawn either way, so the plain text a pipe or a CI
log gets says exactly what the terminal shows.  Colour follows the
``NO_COLOR`` convention (https://no-color.org): rich turns colour off when
it is set, and plain text never has any.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

import yaml

from modelrelease.cli.view import StatusData, format_number, progress_bar, short_duration


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


@dataclass
class KeyValues:
    title: str
    pairs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    empty: str = ""


Block = KeyValues | Table

_STYLES = {
    "Succeeded": "bold green",
    "pass": "green",
    "True": "green",
    "ready": "green",
    "AVAILABLE": "green",
    "Promoted": "green",
    "RolledBack": "bold red",
    "Failed": "bold red",
    "fail": "red",
    "Warning": "red",
    "not ready": "red",
    "Paused": "yellow",
    "AwaitingApproval": "bold yellow",
    "inconclusive": "yellow",
    "Progressing": "cyan",
}


def wants_rich(stream: IO[str] | None = None) -> bool:
    """Rich only on a terminal (a pipe, a file or a dumb terminal get plain text)."""
    stream = stream or sys.stdout
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


def dump(data: Any, fmt: OutputFormat) -> str:
    if fmt == OutputFormat.json:
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def render_plain(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if out:
            out.append("")
        if isinstance(block, KeyValues):
            if block.title:
                out.append(f"{block.title}:")
            width = max((len(k) for k, _ in block.pairs), default=0)
            indent = "  " if block.title else ""
            out.extend(f"{indent}{k + ':':<{width + 1}}  {v}".rstrip() for k, v in block.pairs)
            continue
        if block.title:
            out.append(f"{block.title}:")
        if not block.rows:
            if block.empty:
                out.append(f"  {block.empty}" if block.title else block.empty)
            continue
        indent = "  " if block.title else ""
        widths = [max(len(str(row[i])) for row in [block.headers, *block.rows]) for i in range(len(block.headers))]
        for row in [block.headers, *block.rows]:
            cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
            out.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(out) + "\n"


def render_rich(blocks: list[Block]) -> Any:
    """A rich renderable (rich is imported here only: plain output never loads it)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table as RichTable
    from rich.text import Text

    parts: list[Any] = []
    for block in blocks:
        if isinstance(block, KeyValues):
            grid = RichTable.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for key, value in block.pairs:
                grid.add_row(key, _styled(value))
            if block.title:
                parts.append(Text(block.title, style="bold underline"))
            parts.append(grid)
            continue
        table = RichTable(
            title=block.title or None,
            title_justify="left",
            title_style="bold underline",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for header in block.headers:
            table.add_column(header, overflow="fold")
        for row in block.rows:
            table.add_row(*(_styled(str(cell)) for cell in row))
        if not block.rows and block.empty:
            parts.append(Text(block.title, style="bold underline") if block.title else Text(""))
            parts.append(Text(f"  {block.empty}", style="dim"))
            continue
        parts.append(table)
    return Group(*parts)


def _styled(value: str) -> Any:
    from rich.text import Text

    if value.startswith("[#") or value.startswith("[█"):
        return Text(value, style="cyan")
    return Text(value, style=_STYLES.get(value, ""))


def print_blocks(blocks: list[Block], stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    if wants_rich(stream):
        from rich.console import Console

        Console(file=stream).print(render_rich(blocks))
        return
    stream.write(render_plain(blocks))
    stream.flush()


def table_blocks(title: str, headers: list[str], rows: list[list[Any]], empty: str) -> list[Block]:
    return [Table(title, headers, [[format_number(c) if c is None else str(c) for c in row] for row in rows], empty)]


def status_blocks(data: StatusData, fancy: bool = False) -> list[Block]:
    """The ``status`` screen: release, versions and pods, stage, metrics, history, events."""
    blocks: list[Block] = []
    header = KeyValues(
        "",
        [
            ("Name", f"{data.namespace}/{data.name}"),
            ("Phase", data.phase),
            ("Message", data.message),
            ("Stable", _version(data.stable_version)),
            ("Candidate", _version(data.candidate_version)),
        ],
    )
    if data.generation is not None and data.observed_generation != data.generation:
        header.pairs.append(("Generation", f"{data.generation} (operator has seen {data.observed_generation})"))
    blocks.append(header)
    if data.spec_problems:
        blocks.append(Table("Spec problems", ["PROBLEM"], [[p] for p in data.spec_problems]))
    pod_rows: list[list[str]] = []
    for version in data.versions:
        pods = version["pods"] or [None]
        for pod in pods:
            pod_rows.append(
                [
                    f"v{version['version']}",
                    version["role"],
                    version["deployment"],
                    f"{version['ready']}/{version['desired']}",
                    pod["name"] if pod else "-",
                    ("ready" if pod["ready"] else "not ready") if pod else "-",
                    (pod["model"] or "-") if pod else "-",
                ]
            )
    blocks.append(
        Table(
            "Versions",
            ["VERSION", "ROLE", "DEPLOYMENT", "READY", "POD", "POD READY", "MODEL"],
            pod_rows,
            "no Deployments yet",
        )
    )
    if data.stage is not None:
        blocks.append(_stage_block(data, fancy))
    metrics = [
        [
            m["name"],
            format_number(m["candidate"]),
            format_number(m["stable"]),
            format_number(m["samples"]),
            m["verdict"],
            m["reason"],
        ]
        for m in data.metrics
    ]
    blocks.append(
        Table(
            "Metrics (latest check)",
            ["METRIC", "CANDIDATE", "STABLE", "SAMPLES", "VERDICT", "REASON"],
            metrics,
            "no check in this stage yet",
        )
    )
    history = [
        [h["at"] or "", f"v{h['version']}", h["outcome"] or "", h["stage"] or "", h["message"] or ""]
        for h in data.history
    ]
    blocks.append(Table("History", ["AT", "VERSION", "OUTCOME", "STAGE", "MESSAGE"], history, "none"))
    events = [
        [e["age"], e["type"], e["reason"], e["message"] + (f" (x{e['count']})" if e["count"] > 1 else "")]
        for e in data.events
    ]
    blocks.append(Table("Events", ["AGE", "TYPE", "REASON", "MESSAGE"], events, "none"))
    return blocks


def _stage_block(data: StatusData, fancy: bool) -> KeyValues:
    stage = data.stage
    assert stage is not None
    position = f" ({stage['index'] + 1}/{stage['count']})" if stage["count"] else ""
    pairs = [("Stage", f"{stage['name']}{position}")]
    weight = f"{stage['weight']}% desired, {stage['actualWeight']}% actual"
    if stage["mirror"]:
        weight += f", mirror {stage['mirror']}%"
    pairs.append(("Weight", weight))
    elapsed, duration = stage["elapsedSeconds"], stage["durationSeconds"]
    full, empty = ("█", "░") if fancy else ("#", "-")
    if duration:
        done = (elapsed or 0) / duration
        spent = short_duration(elapsed) if elapsed is not None else "not started"
        pairs.append(("Time", f"{progress_bar(done, 20, full, empty)} {spent} of {short_duration(duration)}"))
    elif elapsed is not None:
        pairs.append(("Time", f"{short_duration(elapsed)} (no duration)"))
    needed = stage["checksNeeded"]
    analysis = data.analysis
    checks = f"{stage['checksPassed']} passed of {needed if needed is not None else '?'} needed"
    checks += (
        f" ({analysis.get('checks', 0)} run: {analysis.get('failures', 0)} failed, "
        f"{analysis.get('inconclusive', 0)} inconclusive)"
    )
    pairs.append(("Checks", checks))
    if stage["approval"]:
        pairs.append(("Approval", "given" if stage["approved"] else "required, not given"))
    pairs.append(("Waiting for", ", ".join(stage["waitingFor"]) or "-"))
    return KeyValues("Current stage", pairs)


def _version(version: int | None) -> str:
    return f"v{version}" if version is not None else "-"
