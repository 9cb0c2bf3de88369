"""The chart's Grafana dashboard as the tests read it: a structural check, and every query it runs.

Why a hand-written check rather than Grafana's own schema: Grafana publishes
its dashboard schema only inside Grafana (CUE, per version), which no test
here can run.  The check covers what makes Grafana refuse or silently
mis-show a provisioned dashboard: missing or duplicate ids and refIds, panels
outside the 24-column grid or overlapping, a query without an expression or
a datasource, and a ``$variable`` that no template variable defines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "charts" / "modelrelease" / "dashboards" / "modelrelease-rollouts.json"

GRID_COLUMNS = 24
PANEL_TYPES = frozenset({"row", "timeseries", "state-timeline", "stat", "table", "gauge", "bargauge", "text"})
GRAFANA_VARIABLES = frozenset({"__interval", "__rate_interval", "__range", "__interval_ms", "__range_s"})
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def structural_problems(dashboard: dict[str, Any]) -> list[str]:
    """Everything wrong with the dashboard's structure; empty when it is sound."""
    problems: list[str] = []
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list)):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"top level: {key} must be a {kind.__name__}")
    templating = dashboard.get("templating", {}).get("list", [])
    defined = {variable.get("name") for variable in templating}
    if "datasource" not in defined or not any(v.get("type") == "datasource" for v in templating):
        problems.append("templating: no datasource variable")
    for variable in templating:
        if variable.get("type") == "query" and not (variable.get("query") or {}).get("query"):
            problems.append(f"templating: variable {variable.get('name')} has no query")
    known = defined | GRAFANA_VARIABLES
    ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard.get("panels", []):
        where = f"panel {panel.get('id')} ({panel.get('title')!r})"
        if not isinstance(panel.get("id"), int) or panel["id"] in ids:
            problems.append(f"{where}: id missing or not unique")
        ids.add(panel.get("id", -1))
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown type {panel.get('type')!r}")
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
            continue
        if grid["w"] < 1 or grid["h"] < 1 or grid["x"] < 0 or grid["x"] + grid["w"] > GRID_COLUMNS:
            problems.append(f"{where}: gridPos {grid} outside the {GRID_COLUMNS}-column grid")
        for y in range(grid["y"], grid["y"] + grid["h"]):
            for x in range(grid["x"], grid["x"] + grid["w"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps {cells[(x, y)]} at x={x} y={y}")
                    break
                cells[(x, y)] = where
        if panel.get("type") == "row":
            continue
        if not panel.get("datasource"):
            problems.append(f"{where}: no datasource")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids) or not all(ref_ids):
            problems.append(f"{where}: refIds missing or repeated: {ref_ids}")
        for target in targets:
            problems += _expression_problems(where, target.get("expr"), known)
    for annotation in dashboard.get("annotations", {}).get("list", []):
        where = f"annotation {annotation.get('name')!r}"
        if not annotation.get("datasource"):
            problems.append(f"{where}: no datasource")
        problems += _expression_problems(where, annotation.get("expr"), known)
    return problems


def _expression_problems(where: str, expr: Any, known: frozenset[str] | set[str]) -> list[str]:
    if not isinstance(expr, str) or not expr.strip():
        return [f"{where}: a query without an expression"]
    names = {braced or bare for braced, bare in VARIABLE.findall(expr)}
    problems = [f"{where}: ${name} is not a template variable" for name in sorted(names - set(known))]
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append(f"{where}: unbalanced brackets in {expr!r}")
    return problems


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, expression)`` for every panel query and annotation query."""
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets") or []
    ]
    found += [(f"annotation {a['name']!r}", a["expr"]) for a in dashboard.get("annotations", {}).get("list", [])]
    return found


def substitute(expr: str, namespace: str, release: str, rate_interval: str = "1m") -> str:
    """The query as Grafana sends it for one selected release."""
    values = {"namespace": namespace, "release": release, "__rate_interval": rate_interval}
    return VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), expr)
