"""What ``get``, ``status`` and ``watch`` show, computed from plain API objects: pure, so tested without a cluster.

Why data first and text second: ``-o json|yaml`` prints the same data the
tables are drawn from, so a script and a person see the same facts, and the
two renderers (rich on a terminal, plain text otherwise, ``render.py``) only
lay it out.  ``now`` is passed in, as in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelrelease.api import InvalidRelease, ModelReleaseSpec, parse_spec
from modelrelease.api.duration import parse_duration
from modelrelease.cli.cluster import Obj, Snapshot
from modelrelease.engine.clock import elapsed_since, parse_time
from modelrelease.engine.stages import checks_needed, has_traffic
from modelrelease.kube.manifests import LABEL_VERSION

HISTORY_SHOWN = 8
EVENTS_SHOWN = 8
TERMINAL_OK = "Succeeded"
TERMINAL_BAD = ("RolledBack", "Failed")


def age(timestamp: str | None, now: datetime) -> str:
    """Kubernetes-style age: 45s, 3m, 2h, 5d."""
    elapsed = elapsed_since(timestamp, now) if timestamp else None
    if elapsed is None:
        return "<unknown>"
    return short_duration(elapsed.total_seconds())


def short_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest}s" if rest and minutes < 10 else f"{minutes}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def progress_bar(fraction: float, width: int = 20, full: str = "#", empty: str = "-") -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "[" + full * filled + empty * (width - filled) + "]"


def is_finished(release: Obj) -> bool:
    """The phase is terminal *for the current spec*: a status not yet updated for a new generation is not."""
    status = release.get("status") or {}
    generation = release.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or (observed is not None and observed >= generation)
    return current and status.get("phase") in (TERMINAL_OK, *TERMINAL_BAD)


def exit_code_of(release: Obj) -> int:
    return 0 if (release.get("status") or {}).get("phase") == TERMINAL_OK else 1


def release_row(release: Obj, now: datetime) -> dict[str, Any]:
    """One line of ``get``: the printer columns, plus the weight the router reached."""
    metadata = release.get("metadata", {})
    status = release.get("status") or {}
    stage = status.get("stage") or {}
    weight = f"{stage.get('weight', 0)}/{stage.get('actualWeight', 0)}" if stage else ""
    return {
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "phase": status.get("phase", ""),
        "stable": status.get("stableVersion"),
        "candidate": status.get("candidateVersion"),
        "stage": stage.get("name", ""),
        "weight": weight,
        "age": age(metadata.get("creationTimestamp"), now),
    }


@dataclass
class StatusData:
    """The ``status`` view as data (``as_dict`` is what ``-o json`` prints)."""

    name: str
    namespace: str
    phase: str
    message: str
    stable_version: int | None
    candidate_version: int | None
    generation: int | None
    observed_generation: int | None
    spec_problems: list[str] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    stage: dict[str, Any] | None = None
    analysis: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "phase": self.phase,
            "message": self.message,
            "stableVersion": self.stable_version,
            "candidateVersion": self.candidate_version,
            "generation": self.generation,
            "observedGeneration": self.observed_generation,
            "specProblems": self.spec_problems,
            "versions": self.versions,
            "stage": self.stage,
            "analysis": self.analysis,
            "metrics": self.metrics,
            "conditions": self.conditions,
            "history": self.history,
            "events": self.events,
        }


def status_data(snapshot: Snapshot, now: datetime) -> StatusData:
    release = snapshot.release
    metadata = release.get("metadata", {})
    status = release.get("status") or {}
    spec: ModelReleaseSpec | None = None
    problems: list[str] = []
    try:
        spec = parse_spec(release.get("spec") or {})
    except InvalidRelease as invalid:
        problems = invalid.problems
    analysis = status.get("analysis") or {}
    data = StatusData(
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        phase=status.get("phase", "(no status yet)"),
        message=status.get("message", ""),
        stable_version=status.get("stableVersion"),
        candidate_version=status.get("candidateVersion"),
        generation=metadata.get("generation"),
        observed_generation=status.get("observedGeneration"),
        spec_problems=problems,
        versions=_versions(snapshot, status),
        stage=_stage(spec, status, now),
        analysis={k: analysis.get(k, 0) for k in ("checks", "passed", "failures", "inconclusive")},
        metrics=[_metric(m) for m in analysis.get("metrics", [])],
        conditions=[
            {k: c.get(k, "") for k in ("type", "status", "reason", "message")} for c in status.get("conditions", [])
        ],
        history=[_history(h) for h in status.get("history", [])[-HISTORY_SHOWN:]],
        events=_events(snapshot.events, now),
    )
    return data


def _role(version: int, status: Obj) -> str:
    if version == status.get("candidateVersion"):
        return "candidate"
    if version == status.get("stableVersion"):
        return "stable"
    if version == status.get("retiringVersion"):
        return "retiring"
    if version == status.get("rejectedVersion"):
        return "rejected"
    return "previous"


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _versions(snapshot: Snapshot, status: Obj) -> list[dict[str, Any]]:
    pods_by_version: dict[str, list[Obj]] = {}
    for pod in snapshot.pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        version = (pod.get("metadata", {}).get("labels") or {}).get(LABEL_VERSION, "")
        pods_by_version.setdefault(version, []).append(pod)
    rows = []
    for deployment in snapshot.deployments:
        labels = deployment.get("metadata", {}).get("labels") or {}
        text = labels.get(LABEL_VERSION, "")
        if not text.isdigit():
            continue
        version = int(text)
        dep_status = deployment.get("status") or {}
        pods = sorted(pods_by_version.get(text, []), key=lambda p: str(p["metadata"]["name"]))
        rows.append(
            {
                "version": version,
                "role": _role(version, status),
                "deployment": deployment["metadata"]["name"],
                "desired": (deployment.get("spec") or {}).get("replicas", 0),
                "ready": dep_status.get("readyReplicas", 0) or 0,
                "pods": [
                    {
                        "name": pod["metadata"]["name"],
                        "ip": (pod.get("status") or {}).get("podIP") or "",
                        "ready": _pod_ready(pod),
                        "model": snapshot.model_states.get(pod["metadata"]["name"], ""),
                    }
                    for pod in pods
                ],
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def _stage(spec: ModelReleaseSpec | None, status: Obj, now: datetime) -> dict[str, Any] | None:
    stage_status = status.get("stage")
    if not stage_status or status.get("candidateVersion") is None:
        return None
    index = int(stage_status.get("index", 0))
    spec_stage = spec.stages[index] if spec is not None and index < len(spec.stages) else None
    if spec_stage is not None and spec_stage.name != stage_status.get("name"):
        spec_stage = None
    traffic = spec_stage is not None and has_traffic(spec_stage)
    clock_start = stage_status.get("reachedAt") if traffic else stage_status.get("enteredAt")
    elapsed = elapsed_since(clock_start, now) if clock_start else None
    duration = parse_duration(spec_stage.duration) if spec_stage is not None and spec_stage.duration else None
    waiting: list[str] = []
    if spec is not None and spec.paused:
        waiting.append("spec.paused")
    if status.get("pausedByRequest"):
        waiting.append("pause request (modelrelease resume)")
    if spec_stage is not None and spec_stage.approval and not stage_status.get("approved"):
        waiting.append(f"approval of stage {spec_stage.name}")
    if spec is not None and spec.hold_at and spec_stage is not None:
        names = [s.name for s in spec.stages]
        if spec.hold_at in names and names.index(spec.hold_at) <= index:
            waiting.append(f"holdAt {spec.hold_at}")
    if spec_stage is not None and spec_stage.smoke is not None and not stage_status.get("smokePassed"):
        waiting.append("smoke test")
    if traffic and not clock_start:
        waiting.append(f"router to reach {stage_status.get('weight', 0)}%")
    analysis = status.get("analysis") or {}
    return {
        "name": stage_status.get("name"),
        "index": index,
        "count": len(spec.stages) if spec is not None else None,
        "weight": stage_status.get("weight", 0),
        "actualWeight": stage_status.get("actualWeight", 0),
        "mirror": stage_status.get("mirror", 0),
        "enteredAt": stage_status.get("enteredAt"),
        "clockStartedAt": clock_start,
        "elapsedSeconds": int(elapsed.total_seconds()) if elapsed is not None else None,
        "durationSeconds": int(duration.total_seconds()) if duration is not None else None,
        "checksPassed": analysis.get("passed", 0),
        "checksNeeded": checks_needed(spec, spec_stage) if spec is not None and spec_stage is not None else None,
        "approval": bool(spec_stage.approval) if spec_stage is not None else False,
        "approved": bool(stage_status.get("approved")),
        "waitingFor": waiting,
    }


def _metric(metric: Obj) -> dict[str, Any]:
    return {
        "name": metric.get("name", ""),
        "candidate": metric.get("candidate"),
        "stable": metric.get("baseline"),
        "samples": metric.get("samples"),
        "verdict": metric.get("verdict", ""),
        "reason": metric.get("message", ""),
    }


def _history(entry: Obj) -> dict[str, Any]:
    return {k: entry.get(k) for k in ("at", "version", "outcome", "stage", "reason", "message")}


def _events(events: list[Obj], now: datetime) -> list[dict[str, Any]]:
    def when(event: Obj) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp"))

    ordered = sorted(events, key=when)[-EVENTS_SHOWN:]
    return [
        {
            "age": age(_normal_time(when(e)), now),
            "type": e.get("type", ""),
            "reason": e.get("reason", ""),
            "message": e.get("message", ""),
            "count": e.get("count") or 1,
        }
        for e in ordered
    ]


def _normal_time(text: str) -> str | None:
    """eventTime carries microseconds; ages need only the second."""
    try:
        return parse_time(text[:19] + "Z").strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def format_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
