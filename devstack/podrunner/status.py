"""Pod phase and conditions from container statuses, by the kubelet's rules (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from devstack.podrunner.clock import now_rfc3339
from devstack.podrunner.kube import JSON

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def pod_phase(restart_policy: str, init_done: bool, init_failed: bool, statuses: Sequence[JSON]) -> str:
    """The kubelet's getPhase: Pending until everything has started once, then Running/Succeeded/Failed."""
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state = status.get("state", {})
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif status.get("lastState", {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped == 0:
        return "Pending"
    if restart_policy == "Always":
        return "Running"
    if restart_policy == "OnFailure":
        return "Succeeded" if stopped == succeeded else "Running"
    return "Succeeded" if stopped == succeeded else "Failed"


@dataclass
class ConditionBook:
    """Pod conditions with lastTransitionTime kept until the status really changes."""

    _since: dict[str, tuple[str, str]] = field(default_factory=dict)

    def condition(self, kind: str, true: bool, reason: str = "", message: str = "") -> JSON:
        status = "True" if true else "False"
        previous = self._since.get(kind)
        if previous is None or previous[0] != status:
            self._since[kind] = (status, now_rfc3339())
        entry: JSON = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self._since[kind][1],
        }
        if reason and not true:
            entry["reason"] = reason
        if message and not true:
            entry["message"] = message
        return entry


def not_ready_names(statuses: Sequence[JSON]) -> list[str]:
    return [s["name"] for s in statuses if not s.get("ready")]


def kubelet_conditions(
    book: ConditionBook,
    *,
    sandbox_ready: bool,
    init_done: bool,
    statuses: Sequence[JSON],
    readiness_gates: Sequence[str],
    existing: Sequence[JSON],
    terminal: bool,
) -> list[JSON]:
    """The conditions the kubelet owns, plus the ones others own (PodScheduled, readiness gates) passed through."""
    not_ready = not_ready_names(statuses)
    containers_ready = init_done and not not_ready and bool(statuses) and not terminal
    ready_message = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else ""
    foreign = [c for c in existing if c.get("type") not in KUBELET_CONDITIONS]
    gate_status = {c.get("type"): c.get("status") for c in foreign}
    failing_gates = [gate for gate in readiness_gates if gate_status.get(gate) != "True"]
    ready = containers_ready and not failing_gates
    ready_reason = "ContainersNotReady" if not containers_ready else "ReadinessGatesNotReady"
    if containers_ready and failing_gates:
        ready_message = f"corresponding condition of pod readiness gate {failing_gates[0]!r} does not exist or is false"
    if terminal:
        ready_reason = "PodCompleted"
        ready_message = ""
    ours = [
        book.condition("PodReadyToStartContainers", sandbox_ready),
        book.condition(
            "Initialized", init_done, "ContainersNotInitialized", "" if init_done else "init containers pending"
        ),
        book.condition("ContainersReady", containers_ready, ready_reason, ready_message),
        book.condition("Ready", ready, ready_reason, ready_message),
    ]
    if terminal:
        ours = [{**c, "reason": "PodCompleted"} if c["type"] in ("ContainersReady", "Ready") else c for c in ours]
    return foreign + ours
