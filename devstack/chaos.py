"""Chaos for the operator on devstack: fault injectors, and the invariants every trial must keep.

Why the invariants are pure functions over recorded observations: a chaos
trial is long and noisy, but what it must prove is exact.  A trial
(devstack.chaos_trials) records what the API server showed while faults were
injected: every change of the release's Deployments (a watch), the release's
final status, when Prometheus was down, and the API server's audit log (who
wrote what, what each Lease read said).  The functions here judge those
records, so each rule is unit-tested on recorded data, with a case it must
catch (tests/unit/test_chaos_invariants.py).

The invariants, one function each:

- ``check_outcome``: the release ends Succeeded on the good model, RolledBack
  on the bad one;
- ``check_single_candidate``: never two canary Deployments with pods;
- ``check_stable_capacity``: the stable Deployment serves at full capacity
  until the candidate is promoted (its role flips to stable);
- ``check_no_promotion_during_outage``: no promotion decided while
  Prometheus was down;
- ``check_history_complete``: ``status.history`` has exactly one entry per
  decision of the rollout: started once, each stage completed once and in
  order, one promotion or one rollback, nothing else;
- ``check_lease_fencing``: no successful write from an operator replica that
  did not hold the Lease.  A replica holds it from its own successful write of
  the Lease naming itself until the first of: ``lease_duration`` after that
  write (another replica may take over from then on), its own read of the
  Lease naming somebody else (from then on it knows; ``slack`` allows for a
  request it had already sent), or its release of the Lease.  A replica whose
  Lease was overwritten behind its back holds it, by this rule, until it reads
  the Lease again: no election protocol can know sooner, and the bench counts
  those writes separately (``writes_while_another_held``).

The fault injectors (restart a control-plane process, a conflict storm,
steal a Lease, freeze a process) act on one devstack; they are used by
devstack.chaos_trials and the e2e tests.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack import kubeconfig, pki, processes
from devstack.audit import AuditEntry, format_moment
from devstack.state import StateDir

ROLE_LABEL = "modelrelease.io/role"
VERSION_LABEL = "modelrelease.io/version"
RELEASE_OUTCOMES = {"Succeeded": "Promoted", "RolledBack": "RolledBack"}
"""The final phase a trial expects, and the history outcome that ends such a rollout."""


# ---- what a trial records -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentView:
    """One of the release's Deployments as the API server showed it."""

    name: str
    version: int
    role: str
    replicas: int
    ready: int

    @property
    def serving(self) -> int:
        """Pods that both should exist and are ready: what the Deployment can serve with right now."""
        return min(self.replicas, self.ready)


@dataclass(frozen=True)
class DeploymentSnapshot:
    """All of the release's Deployments after one change (``at``: seconds since the epoch, observed)."""

    at: float
    deployments: tuple[DeploymentView, ...]


def deployment_view(deployment: Mapping[str, Any]) -> DeploymentView:
    """A Deployment (as JSON) reduced to what the invariants look at."""
    metadata = deployment.get("metadata") or {}
    labels = metadata.get("labels") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    replicas = spec.get("replicas")
    return DeploymentView(
        name=str(metadata.get("name", "")),
        version=int(labels.get(VERSION_LABEL, -1)),
        role=str(labels.get(ROLE_LABEL, "")),
        replicas=1 if replicas is None else int(replicas),
        ready=int(status.get("readyReplicas") or status.get("ready_replicas") or 0),
    )


@dataclass(frozen=True)
class Window:
    """A stretch of time (seconds since the epoch), such as a Prometheus outage."""

    start: float
    end: float

    def describe(self) -> str:
        return f"{format_moment(self.start)}-{format_moment(self.end)}"


@dataclass(frozen=True)
class LeaseRef:
    namespace: str
    name: str
    duration: float


@dataclass
class TrialRecord:
    """Everything one trial observed; the invariants are judged on this alone."""

    fault: str
    expected_phase: str
    stable_version: int
    candidate_version: int
    capacity: int
    stages: tuple[str, ...]
    history_start: int
    """Entries of ``status.history`` before the rollout began: not this trial's."""
    final_status: dict[str, Any]
    deployments: list[DeploymentSnapshot]
    audit: list[AuditEntry]
    replicas: tuple[str, ...]
    """The operator replicas' user names, which are also their Lease identities."""
    lease: LeaseRef
    prometheus_down: list[Window] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    invariant: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.evidence}"


# ---- the invariants -----------------------------------------------------------------------------------------------


def check_outcome(
    final: Mapping[str, Any], expected_phase: str, stable_version: int, candidate_version: int
) -> list[Violation]:
    """Succeeded with the candidate stable (good model), or RolledBack with the old stable kept (bad model)."""
    phase, stable = final.get("phase"), final.get("stableVersion")
    wanted_stable = candidate_version if expected_phase == "Succeeded" else stable_version
    if phase == expected_phase and stable == wanted_stable and final.get("candidateVersion") is None:
        return []
    return [
        Violation(
            "outcome",
            f"expected {expected_phase} with v{wanted_stable} stable, got phase {phase}, stable v{stable}, "
            f"candidate {final.get('candidateVersion')}: {final.get('message', '')}",
        )
    ]


def check_single_candidate(snapshots: Sequence[DeploymentSnapshot]) -> list[Violation]:
    """At no observed moment do two canary Deployments have pods."""
    found = []
    for snapshot in snapshots:
        canaries = sorted(d.name for d in snapshot.deployments if d.role == "canary" and d.replicas > 0)
        if len(canaries) > 1:
            found.append(Violation("single candidate", f"at {format_moment(snapshot.at)}: {canaries} both have pods"))
    return found


def promoted_at(snapshots: Sequence[DeploymentSnapshot], candidate_version: int) -> float | None:
    """The first observed moment the candidate's Deployment carries the stable role, or None."""
    for snapshot in snapshots:
        if any(d.version == candidate_version and d.role == "stable" for d in snapshot.deployments):
            return snapshot.at
    return None


def check_stable_capacity(
    snapshots: Sequence[DeploymentSnapshot], stable_version: int, candidate_version: int, capacity: int
) -> list[Violation]:
    """Until the candidate is promoted, the stable Deployment exists, is stable, and serves ``capacity`` pods."""
    found = []
    until = promoted_at(snapshots, candidate_version)
    for snapshot in snapshots:
        if until is not None and snapshot.at >= until:
            break
        stable = next((d for d in snapshot.deployments if d.version == stable_version), None)
        when = format_moment(snapshot.at)
        if stable is None:
            found.append(Violation("stable capacity", f"at {when}: v{stable_version}'s Deployment is gone"))
        elif stable.role != "stable" or stable.serving < capacity:
            found.append(
                Violation(
                    "stable capacity",
                    f"at {when}: {stable.name} role {stable.role!r}, {stable.replicas} replicas, {stable.ready} "
                    f"ready; needs {capacity} serving before promotion",
                )
            )
    return found


def parse_stamp(text: str) -> float:
    """A status timestamp (RFC 3339, whole seconds) in seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_no_promotion_during_outage(
    history: Sequence[Mapping[str, Any]], candidate_version: int, outages: Sequence[Window]
) -> list[Violation]:
    """No Promoted entry stamped while Prometheus was down.

    The engine stamps an entry with the moment its pass began, in whole
    seconds: the pass began within [at, at + 1).  Only a pass that surely
    began inside an outage is a violation; one that began just before it
    may have measured before Prometheus went away.
    """
    found = []
    for entry in history:
        if entry.get("outcome") != "Promoted" or entry.get("version") != candidate_version or not entry.get("at"):
            continue
        at = parse_stamp(str(entry["at"]))
        for outage in outages:
            if at >= math.ceil(outage.start) and at + 1 <= outage.end:
                found.append(
                    Violation(
                        "no promotion without Prometheus",
                        f"v{candidate_version} promoted at {entry['at']} while Prometheus was down {outage.describe()}",
                    )
                )
    return found


def check_history_complete(
    history: Sequence[Mapping[str, Any]], candidate_version: int, stages: Sequence[str], expected_phase: str
) -> list[Violation]:
    """The rollout's entries, in order: Started, then per stage (SmokePassed) StageCompleted, then the verdict.

    ``history`` is what the rollout added (entries from before it began
    removed).  Exactly one verdict (Promoted for Succeeded, RolledBack for
    RolledBack), every stage completed exactly once and in order for a
    promotion, a prefix of them for a rollback, and nothing else: a repeated
    entry is a decision taken twice, a missing one a decision lost.
    """

    def violation(problem: str) -> list[Violation]:
        seen = [f"{h.get('outcome')}({h.get('stage') or ''})@v{h.get('version')}" for h in history]
        return [Violation("history complete", f"{problem}; history of the rollout: {seen}")]

    others = [h for h in history if h.get("version") != candidate_version]
    if others:
        return violation(f"entries for other versions than v{candidate_version}")
    outcomes = [str(h.get("outcome")) for h in history]
    verdict = RELEASE_OUTCOMES.get(expected_phase)
    if not outcomes or outcomes[0] != "Started" or outcomes.count("Started") != 1:
        return violation("the rollout must start exactly once, first")
    if verdict is None or outcomes[-1] != verdict or sum(o in RELEASE_OUTCOMES.values() for o in outcomes) != 1:
        return violation(f"expected exactly one verdict, {verdict}, last")
    unexpected = sorted(set(outcomes) - {"Started", "SmokePassed", "StageCompleted", verdict})
    if unexpected:
        return violation(f"unexpected decisions {unexpected}")
    completed = [str(h.get("stage")) for h in history if h.get("outcome") == "StageCompleted"]
    if verdict == "Promoted" and completed != list(stages):
        return violation(f"a promotion needs every stage completed once, in order: {list(stages)}")
    if verdict == "RolledBack" and completed != list(stages[: len(completed)]):
        return violation("completed stages must be the first stages, each once, in order")
    smoked = [str(h.get("stage")) for h in history if h.get("outcome") == "SmokePassed"]
    if len(smoked) != len(set(smoked)):
        return violation("a smoke test passed twice")
    return []


@dataclass
class _Tenure:
    renewed: float | None = None
    lost: tuple[float, str] | None = None


def _lease_facts(audit: Iterable[AuditEntry], lease: LeaseRef) -> list[AuditEntry]:
    return [
        e
        for e in audit
        if e.is_lease and e.namespace == lease.namespace and e.name == lease.name and e.succeeded and e.verb != "delete"
    ]


def _timeline(
    audit: Iterable[AuditEntry], lease: LeaseRef, replicas: Iterable[str]
) -> list[tuple[float, int, AuditEntry]]:
    """Lease answers at the moment they were answered, replicas' other writes at the moment they were received."""
    names = set(replicas)
    facts = [(e.answered, 0, e) for e in _lease_facts(audit, lease)]
    writes = [(e.received, 1, e) for e in audit if e.user in names and e.is_write and e.succeeded and not e.is_lease]
    return sorted(facts + writes, key=lambda item: (item[0], item[1]))


def check_lease_fencing(
    audit: Sequence[AuditEntry], replicas: Sequence[str], lease: LeaseRef, slack: float = 1.0
) -> list[Violation]:
    """No successful write by a replica outside its tenure of the Lease (see the module docstring for the rule)."""
    tenure = {name: _Tenure() for name in replicas}
    holder: tuple[str | None, float] = (None, 0.0)
    found = []
    for moment, _, entry in _timeline(audit, lease, replicas):
        if entry.is_lease:
            if entry.is_write and entry.holder != holder[0]:
                holder = (entry.holder, entry.answered)
            mine = tenure.get(entry.user)
            if mine is None:
                continue
            if entry.is_write and entry.holder == entry.user:
                mine.renewed, mine.lost = entry.answered, None
            elif entry.is_write:
                mine.renewed, mine.lost = None, (entry.answered, entry.holder or "nobody (released)")
            elif entry.holder != entry.user and mine.lost is None:
                mine.lost = (entry.answered, entry.holder or "nobody")
            continue
        mine = tenure[entry.user]
        context = f"the Lease named {holder[0] or 'nobody'} since {format_moment(holder[1])}"
        if mine.renewed is None:
            why = f"it did not hold Lease {lease.namespace}/{lease.name}" + (
                f" (its own Lease access at {format_moment(mine.lost[0])} named {mine.lost[1]})" if mine.lost else ""
            )
        elif mine.lost is not None and moment > mine.lost[0] + slack:
            why = f"{moment - mine.lost[0]:.1f}s after its own Lease read at {format_moment(mine.lost[0])} named {mine.lost[1]}"
        elif mine.renewed is not None and moment > mine.renewed + lease.duration:
            why = (
                f"{moment - mine.renewed:.1f}s after its last renewal at {format_moment(mine.renewed)}, "
                f"longer than the lease duration {lease.duration:g}s"
            )
        else:
            continue
        found.append(Violation("lease fencing", f"{entry.describe()}: {why}; {context}"))
    return found


def writes_while_another_held(
    audit: Sequence[AuditEntry], replicas: Sequence[str], lease: LeaseRef
) -> list[AuditEntry]:
    """Replicas' successful writes while the Lease object named someone else (whether or not they could know)."""
    holder: str | None = None
    found = []
    for _, _, entry in _timeline(audit, lease, replicas):
        if entry.is_lease:
            if entry.is_write:
                holder = entry.holder
        elif holder is not None and holder != entry.user:
            found.append(entry)
    return found


def applies_cut(audit: Sequence[AuditEntry], user: str, release: str, moment: float) -> bool:
    """Whether ``user``, stopped at ``moment``, was between a pass's status write and the end of its applies.

    True when its last status write before ``moment`` was not yet followed by
    a write of the Service named after the release, which the operator
    applies after every ConfigMap and Deployment of a pass (the route, last;
    operator/modelrelease/apply.py).
    """
    last_status: AuditEntry | None = None
    for entry in sorted(audit, key=lambda e: e.received):
        if entry.user != user or not entry.succeeded or entry.received >= moment:
            continue
        if entry.resource == "modelreleases/status":
            last_status = entry
        elif last_status is not None and entry.resource == "services" and entry.name == release:
            last_status = None
    return last_status is not None


def check_observed(record: TrialRecord) -> list[Violation]:
    """The recordings are complete enough to vouch for anything: Deployment changes seen, replicas' writes logged."""
    found = []
    if len(record.deployments) < 2:
        found.append(Violation("observed", f"only {len(record.deployments)} Deployment snapshots were recorded"))
    if not any(e.user in record.replicas and e.is_write for e in record.audit):
        found.append(Violation("observed", f"the audit log holds no write by the replicas {list(record.replicas)}"))
    return found


def check_trial(record: TrialRecord) -> list[Violation]:
    """Every invariant on one trial's record."""
    history = list(record.final_status.get("history") or [])[record.history_start :]
    return [
        *check_observed(record),
        *check_outcome(record.final_status, record.expected_phase, record.stable_version, record.candidate_version),
        *check_single_candidate(record.deployments),
        *check_stable_capacity(record.deployments, record.stable_version, record.candidate_version, record.capacity),
        *check_no_promotion_during_outage(history, record.candidate_version, record.prometheus_down),
        *check_history_complete(history, record.candidate_version, record.stages, record.expected_phase),
        *check_lease_fencing(record.audit, record.replicas, record.lease),
    ]


# ---- fault injectors -----------------------------------------------------------------------------------------------


def component_argv(pid: int) -> list[str]:
    """The command line a running process was started with (from /proc), to start it again the same way."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    argv = [part.decode() for part in raw.split(b"\0") if part]
    if not argv:
        raise RuntimeError(f"pid {pid} has no command line (exited, or a kernel thread)")
    return argv


def restart_component(
    state: StateDir, name: str, down_for: float = 0.0, sig: signal.Signals = signal.SIGKILL
) -> Window:
    """Kill a devstack component (etcd, kube-apiserver, ...) and start it again with the same argv.

    The argv is read from /proc before the kill, so cluster.json needs no
    copy of it.  Same ports, same data directory: etcd keeps its data
    (devstack's ``up`` wipes it only on a fresh start), clients reconnect to
    the same address.  The new pid is recorded in ``cluster.json`` so ``down``
    stops it.  Returns when the component was down (killed -> started again).
    Does not wait for readiness; see ``wait_apiserver_ready``.
    """
    from devstack import cluster

    record = state.read()
    if record is None or not record.owns(name):
        raise RuntimeError(f"no running {name} recorded in {state.record_path}")
    pid = record.pids[name]
    argv = component_argv(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + 30
    while processes.alive(pid) or processes.group_members(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} (pid {pid}) did not exit after {sig.name}")
        time.sleep(0.02)
    stopped = time.time()
    # The fault is the downtime itself; nothing to wait for.
    time.sleep(down_for)
    with state.locked():
        record = state.read()
        assert record is not None
        cluster._start(record, state, name, argv)
    return Window(stopped, time.time())


def wait_apiserver_ready(state: StateDir, timeout: float = 120.0) -> float:
    """Block until /readyz answers 200; return when it did (seconds since the epoch)."""
    from devstack import cluster

    record = state.read()
    assert record is not None
    deadline = time.monotonic() + timeout
    while True:
        code, body = cluster._readyz(record, state)
        if code == 200:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"kube-apiserver not ready {timeout:.0f}s after a restart: {code} {body[-500:]}")
        time.sleep(0.1)


def replica_kubeconfig(state: StateDir, identity: str) -> Path:
    """A kubeconfig for one operator replica, with its own client certificate (CN = ``identity``).

    Its own user name is what makes its writes attributable in the audit
    log; ``system:masters`` gives it what the operator needs on devstack.
    """
    record = state.read()
    if record is None:
        raise RuntimeError(f"no devstack recorded in {state.record_path}")
    who = pki.ClientIdentity(f"replica-{identity}", identity, ("system:masters",))
    certs = pki.PKI(state.pki)
    pki.ensure_client(certs, who)
    return kubeconfig.write(state.root / "replicas" / f"{identity}.kubeconfig", certs, who, record.api_server)


class ConflictStorm:
    """A concurrent writer: patches the release's annotations and status in a tight loop, bounded in count and time.

    Every write moves the release's resourceVersion, so the operator's
    conflict-checked status writes meet 409s.  It only writes what the
    operator never reads to decide: an annotation of its own and
    ``status.message`` (prose the operator rewrites).
    """

    ANNOTATION = "chaos.modelrelease.io/storm"

    def __init__(self, api_client: Any, namespace: str, name: str, max_writes: int, max_seconds: float) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client)
        self.namespace, self.name = namespace, name
        self.max_writes, self.max_seconds = max_writes, max_seconds
        self.writes = 0
        self.errors = 0
        self.window: Window | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conflict-storm", daemon=True)

    def start(self) -> ConflictStorm:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(timeout=self.max_seconds + 30)

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def _run(self) -> None:
        started = time.time()
        deadline = time.monotonic() + self.max_seconds
        args = ("modelrelease.io", "v1alpha1", self.namespace, "modelreleases", self.name)
        while self.writes + self.errors < self.max_writes and time.monotonic() < deadline and not self._stop.is_set():
            count = self.writes + self.errors
            try:
                if count % 2:
                    self._api.patch_namespaced_custom_object_status(
                        *args, {"status": {"message": f"chaos storm write {count}"}}, _request_timeout=5
                    )
                else:
                    self._api.patch_namespaced_custom_object(
                        *args, {"metadata": {"annotations": {self.ANNOTATION: str(count)}}}, _request_timeout=5
                    )
                self.writes += 1
            except Exception:  # a refused or timed-out write is part of the storm, not its end
                self.errors += 1
        self.window = Window(started, time.time())


def steal_lease(api_client: Any, lease: LeaseRef, new_holder: str, attempts: int = 20) -> float:
    """Overwrite the Lease's holder (as someone outside the election would), fresh renewTime; return when it stuck."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.CoordinationV1Api(api_client)
    for _ in range(attempts):
        found: Any = api.read_namespaced_lease(lease.name, lease.namespace, _request_timeout=5)
        now = datetime.now().astimezone()
        found.spec.holder_identity = new_holder
        found.spec.acquire_time = now
        found.spec.renew_time = now
        found.spec.lease_transitions = (found.spec.lease_transitions or 0) + 1
        try:
            api.replace_namespaced_lease(lease.name, lease.namespace, found, _request_timeout=5)
        except ApiException as error:
            if error.status == 409:
                continue
            raise
        return time.time()
    raise RuntimeError(f"could not overwrite Lease {lease.namespace}/{lease.name} in {attempts} attempts")


def lease_holder(api_client: Any, lease: LeaseRef) -> str | None:
    from kubernetes import client

    found: Any = client.CoordinationV1Api(api_client).read_namespaced_lease(
        lease.name, lease.namespace, _request_timeout=5
    )
    holder = found.spec.holder_identity if found.spec is not None else None
    return str(holder) if holder else None


def freeze(pid: int) -> float:
    """SIGSTOP a process (a stalled leader: a long GC pause, a frozen VM); return when."""
    os.kill(pid, signal.SIGSTOP)
    return time.time()


def thaw(pid: int) -> float:
    os.kill(pid, signal.SIGCONT)
    return time.time()


def poll(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, message: str = "") -> Any:
    """``devstack.testing.wait_for`` for callers whose predicate may fail while the API server is away."""
    from devstack.testing import wait_for

    def tolerant() -> Any:
        try:
            return predicate()
        except Exception:
            return None

    return wait_for(tolerant, timeout, interval=interval, message=message)
