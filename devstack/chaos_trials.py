"""Chaos trials: a rollout of a good model (v2) or a bad one (v3) on devstack, with one kind of fault injected.

Why a private devstack: the trials restart the API server and etcd and stop
Prometheus, which would break every other test session sharing the default
devstack.  ``private_devstack()`` starts one in its own state directory (its
own ports, pod IP range and Prometheus), with the API server's audit log on
(devstack.audit), and removes it afterwards.

A trial (``run_trial``): a fresh namespace, the operator as one or two
replicas, each with its own client certificate (so the audit log names who
wrote) and a short Lease; the release made stable at v1, then
``spec.model.version`` set to the candidate while labelled traffic flows and
the fault is injected.  Faults are timed on what the API server shows: the
n-th change of the release's status after the rollout began, n drawn from the
trial's seed, so a kill lands while a pass is running (just after its status
write, before its applies) rather than at an arbitrary wall-clock moment.
What was recorded (Deployment changes, status, Prometheus outages, the audit
log) is judged by devstack.chaos.check_trial.

``python -m devstack chaos`` (``make bench-chaos``, devstack.bench_chaos)
runs many trials and a no-fault baseline; ``tests/e2e/test_chaos.py`` one
of each fault.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devstack import audit, cache_root, chaos, cluster, scenario
from devstack.chaos import LeaseRef, TrialRecord, Violation, Window
from devstack.chaos_watch import ReleaseWatch, deployments_recorder, traffic
from devstack.state import StateDir
from devstack.testing import Cluster, connect, wait_for

STABLE_VERSION = 1
MODELS = {"good": (2, "Succeeded"), "bad": (3, "RolledBack")}
CAPACITY = 1
INTERVAL_SECONDS = 2
INCONCLUSIVE_LIMIT = 3
LEASE_SECONDS = 6.0
"""Short, so a frozen leader loses its Lease within a trial; the operator renews every third of it."""
TRAFFIC_RATE = 30.0
ROLLOUT_TIMEOUT = 120.0
STAGES: list[dict[str, Any]] = [
    # Lenient smoke: the bad model must be caught on live accuracy, mid-rollout, where the faults land.
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.3}},
    {"name": "canary", "weight": 50, "duration": "4s"},
    {"name": "full", "weight": 100, "minChecks": 1},
]
ACCURACY = {
    "name": "accuracy",
    "ratio": {
        "success": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}",'
        'outcome="correct"}[{{interval}}]))',
        "total": 'sum(increase(model_prediction_outcomes_total{model="{{model}}",version="{{version}}"}[{{interval}}]))',
    },
    "min": 0.5,
    # Wide: the trials test fault tolerance, not judging. The sequential judge passes v2 against v1 within it on a
    # couple of hundred requests per version (maxDrop 0.02 needs ~600, more than a loaded trial's timeout allows)
    # and fails v3 (about half its answers wrong) as fast as before.
    "compareToBaseline": {"maxDrop": 0.1},
}


def manifest(namespace: str, version: int, name: str = "digits") -> dict[str, Any]:
    analysis = {
        "interval": f"{INTERVAL_SECONDS}s",
        "failureLimit": 2,
        "inconclusiveLimit": INCONCLUSIVE_LIMIT,
        "minChecks": 2,
        "metrics": [ACCURACY],
    }
    return scenario.digits_release(name, namespace, version, CAPACITY, stages=STAGES, analysis=analysis)


# ---- the private devstack ----------------------------------------------------------------------------------------


@dataclass
class ChaosEnv:
    state: StateDir
    cluster: Cluster
    work: Path

    @property
    def audit_log(self) -> Path:
        return audit.log_path(self.state.logs)


@contextlib.contextmanager
def private_devstack(keep: bool = False) -> Iterator[ChaosEnv]:
    """A devstack of its own (API server with the audit log, pod runner, Prometheus), stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="devstack-chaos-", dir=cache_root()))
    state = StateDir(root)
    handle: Cluster | None = None
    try:
        cluster.up(state, started_by="chaos")
        handle = connect(state)
        scenario.install_crd(handle)
        yield ChaosEnv(state, handle, root / "trials")
    finally:
        if handle is not None:
            handle.close()
        cluster.down(state)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# ---- one trial ------------------------------------------------------------------------------------------------------


@dataclass
class Trial:
    """What a fault injector gets: the trial's pieces, its random source, and where to note what it did."""

    env: ChaosEnv
    rng: random.Random
    namespace: str
    release: scenario.Release
    operators: list[scenario.OperatorProcess]
    lease: LeaseRef
    watch: ReleaseWatch
    audit_offset: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    prometheus_down: list[Window] = field(default_factory=list)
    settle: Callable[[], None] = lambda: None
    """Run after the rollout ended, before the audit log is read (a thawed leader's writes must be in it)."""

    @property
    def leader(self) -> scenario.OperatorProcess:
        return self.operators[0]


def _no_fault(trial: Trial) -> None:
    trial.notes["landed"] = True


def _sigkill(trial: Trial, kills: int = 3) -> None:
    """SIGKILL the operator three times, each started again at once.

    The first kill is aimed between a pass's status write and the end of its
    applies: on a status change the operator is frozen (SIGSTOP), and killed
    if the audit log shows its pass still applying, else thawed to try the
    next change.  The others land at seeded random moments after a status
    change (0-0.5 s), wherever the operator is.
    """
    operator = trial.leader
    moments = []
    for index in range(kills):
        process = operator.process
        assert process is not None
        if index == 0:
            at = _kill_mid_pass(trial, process)
            if at is None:
                break
        else:
            delay = trial.rng.uniform(0.0, 0.5)

            def kill(process: Any = process, delay: float = delay) -> None:
                # The fault's own timing (a random moment after a status write), not a wait for anything.
                time.sleep(delay)
                process.kill()

            trigger = trial.watch.arm(trial.rng.randint(1, 3), kill)
            if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
                break
            assert trigger.at is not None
            at = trigger.at
        moments.append(at)
        process.wait(timeout=10)
        operator.start()
    trial.notes["kills"] = moments
    trial.notes["landed"] = len(moments) == kills


def _kill_mid_pass(trial: Trial, process: Any, attempts: int = 8) -> float | None:
    """Freeze the operator on a status change; SIGKILL it if its pass is still applying, else thaw and retry."""
    user, release = trial.leader.identity, trial.release.name
    for _ in range(attempts):
        trigger = trial.watch.arm(trial.rng.randint(1, 2), lambda: chaos.freeze(process.pid))
        if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
            return None
        frozen = trigger.at
        assert frozen is not None

        def status_write_logged(frozen: float = frozen) -> bool:
            # The watch may see the status change before the audit line of its write is in the file.
            entries = audit.read(trial.env.audit_log, trial.audit_offset)[0]
            return any(
                e.user == user and e.resource == "modelreleases/status" and frozen - 5 < e.answered <= frozen
                for e in entries
            )

        with contextlib.suppress(TimeoutError):
            wait_for(status_write_logged, 2.0, interval=0.05)
        if chaos.applies_cut(audit.read(trial.env.audit_log, trial.audit_offset)[0], user, release, frozen):
            process.kill()
            chaos.thaw(process.pid)
            return time.time()
        chaos.thaw(process.pid)
    return None


def _restart(component: str) -> Callable[[Trial], None]:
    def inject(trial: Trial) -> None:
        """Kill ``component`` on a seeded status change; start it again (same argv, ports, data) after 2-5 s."""
        trigger = trial.watch.arm(trial.rng.randint(1, 4), lambda: None)
        if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
            return
        down = chaos.restart_component(trial.env.state, component, down_for=trial.rng.uniform(2.0, 5.0))
        ready = chaos.wait_apiserver_ready(trial.env.state)
        trial.notes["down"] = down
        trial.notes["landed"] = True
        trial.notes["unready_seconds"] = round(ready - down.start, 1)
        trial.notes["during"] = (trigger.view.phase, trigger.view.stage) if trigger.view else None

    return inject


def _prometheus_outage(trial: Trial) -> None:
    """Stop Prometheus as the canary starts (a bad model fails there fast); keep it down past inconclusiveLimit."""
    trigger = trial.watch.arm(1, lambda: None, when=lambda v: v.stage == "canary")
    if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
        return
    scenario.stop_prometheus(trial.env.cluster)
    stopped = time.time()
    try:
        # The outage itself: longer than inconclusiveLimit analysis intervals.
        time.sleep(INCONCLUSIVE_LIMIT * INTERVAL_SECONDS + trial.rng.uniform(3.0, 5.0))
    finally:
        restarting = time.time()
        scenario.start_prometheus(trial.env.cluster)
    outage = Window(stopped, restarting)
    trial.prometheus_down.append(outage)
    trial.notes["down"] = outage
    trial.notes["landed"] = True
    trial.notes["paused"] = any(v.phase == "Paused" and stopped <= v.at <= restarting for v in trial.watch.views)


def _storm(trial: Trial) -> None:
    """A concurrent writer patches the release's annotations and status as fast as it can, for 6-10 s (<= 600)."""
    trigger = trial.watch.arm(trial.rng.randint(1, 3), lambda: None)
    if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
        return
    storm = chaos.ConflictStorm(
        trial.env.cluster.api_client(),
        trial.namespace,
        trial.release.name,
        max_writes=600,
        max_seconds=trial.rng.uniform(6.0, 10.0),
    )
    storm.start().join()
    trial.notes["storm"] = (storm.writes, storm.errors, storm.window)
    trial.notes["landed"] = True


def _lease_steal(trial: Trial) -> None:
    """Right after a status write by the leader (its pass still applying), overwrite the Lease to name the other."""
    thief = trial.env.cluster.api_client()
    other = trial.operators[1].identity
    trigger = trial.watch.arm(trial.rng.randint(1, 4), lambda: chaos.steal_lease(thief, trial.lease, other))
    if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
        return
    trial.notes["stolen_from"] = trial.leader.identity
    trial.notes["stolen_at"] = trigger.at
    trial.notes["landed"] = True
    trial.notes["during"] = (trigger.view.phase, trigger.view.stage) if trigger.view else None


def _leader_sigstop(trial: Trial) -> None:
    """SIGSTOP the leader right after one of its status writes, until the other replica has taken over; SIGCONT."""
    leader, other = trial.operators
    assert leader.process is not None
    pid = leader.process.pid
    trigger = trial.watch.arm(trial.rng.randint(1, 4), lambda: chaos.freeze(pid))
    if not trial.watch.wait(trigger, ROLLOUT_TIMEOUT):
        return
    assert trigger.at is not None
    frozen = trigger.at
    admin = trial.env.cluster.api_client()
    try:
        chaos.poll(
            lambda: chaos.lease_holder(admin, trial.lease) == other.identity,
            trial.lease.duration * 4,
            message="takeover",
        )
        took_over = time.time()
        # "Let the other take over": it acts (a status change of its own) before the old leader wakes up,
        # and the old leader stays frozen longer than the Lease, however recently it renewed.
        chaos.poll(
            lambda: (
                (trial.watch.status_changes_since(took_over) > 0 or trial.watch.ended_at() is not None)
                and time.time() > frozen + trial.lease.duration + 1
            ),
            trial.lease.duration * 4,
            message="a pass of the new leader",
        )
    finally:
        thawed = chaos.thaw(pid)
    trial.notes["frozen"] = leader.identity
    trial.notes["landed"] = True
    trial.notes["frozen_seconds"] = round(thawed - frozen, 1)
    trial.notes["took_over_after"] = round(took_over - frozen, 1)
    trial.notes["thawed_at"] = thawed
    trial.notes["frozen_at"] = frozen

    def settle() -> None:
        # The thawed leader's in-flight pass (if any) writes at once; its next Lease read ends the window.
        chaos.poll(
            lambda: any(
                e.user == leader.identity and e.is_lease and e.answered > thawed
                for e in audit.read(trial.env.audit_log, trial.audit_offset)[0]
            ),
            trial.lease.duration * 3,
            interval=0.5,
            message="the thawed leader reads its Lease",
        )

    trial.settle = settle


@dataclass(frozen=True)
class Fault:
    name: str
    replicas: int
    inject: Callable[[Trial], None]
    description: str
    cluster_wide: bool = False
    """It hits every trial on the devstack (a control-plane restart, Prometheus down), so it runs alone."""
    lease_seconds: float = LEASE_SECONDS


FAULTS = {
    fault.name: fault
    for fault in (
        Fault("none", 1, _no_fault, "no fault (baseline)"),
        Fault("sigkill", 1, _sigkill, "operator SIGKILLed 3x after seeded status writes, restarted"),
        Fault("apiserver", 1, _restart("kube-apiserver"), "kube-apiserver killed, restarted after 2-5 s", True),
        Fault("etcd", 1, _restart("etcd"), "etcd killed, restarted after 2-5 s (data kept)", True),
        Fault("prometheus", 1, _prometheus_outage, f"Prometheus down > {INCONCLUSIVE_LIMIT} intervals in canary", True),
        Fault("storm", 1, _storm, "409 storm: annotation + status patches, 6-10 s"),
        # The operator's default Lease: the old leader learns of the theft at its next renewal (a third of it),
        # and must stop then, long before the validity it computed at its last renewal runs out.
        Fault(
            "lease-steal", 2, _lease_steal, "2 replicas; Lease overwritten to the other mid-pass", lease_seconds=15.0
        ),
        Fault("leader-sigstop", 2, _leader_sigstop, "2 replicas; leader SIGSTOPped past the Lease, then SIGCONT"),
    )
}


@dataclass
class TrialResult:
    fault: str
    model: str
    seed: int
    seconds: float | None
    """From setting the version to the verdict seen; None when the rollout did not end."""
    violations: list[Violation]
    notes: dict[str, Any]
    record: TrialRecord
    operator_logs: list[Path]

    def summary(self) -> str:
        took = f"{self.seconds:.1f}s" if self.seconds is not None else "did not end"
        lines = [f"{self.fault}/{self.model} seed {self.seed}: {took}, {len(self.violations)} violations, {self.notes}"]
        lines += [f"  {v}" for v in self.violations[:20]]
        return "\n".join(lines)


def _operators(env: ChaosEnv, namespace: str, lease: LeaseRef, count: int) -> list[scenario.OperatorProcess]:
    found = []
    for letter in "ab"[:count]:
        identity = f"{namespace}-{letter}"
        config = chaos.replica_kubeconfig(env.state, identity)
        handle = replace(env.cluster, kubeconfig=config, env={**env.cluster.env, "KUBECONFIG": str(config)})
        found.append(
            scenario.OperatorProcess(
                cluster=handle,
                namespaces=namespace,
                log_path=env.work / f"{identity}.log",
                identity=identity,
                lease_name=lease.name,
                lease_namespace=lease.namespace,
                lease_duration=lease.duration,
            )
        )
    return found


def _namespace(env: ChaosEnv, fault: str) -> str:
    name = f"chaos-{fault}-{uuid.uuid4().hex[:5]}"
    env.cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: env.cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        30,
        message=f"default ServiceAccount in {name}",
    )
    scenario.apply_golden_set(env.cluster, name)
    return name


def _describe_effects(trial: Trial, entries: list[audit.AuditEntry]) -> None:
    """Fault-specific facts from the audit log: did the fault bite where it was meant to."""
    notes, replicas = trial.notes, [o.identity for o in trial.operators]
    if "kills" in notes:
        notes["kills_cutting_applies"] = sum(
            chaos.applies_cut(entries, replicas[0], trial.release.name, at) for at in notes["kills"]
        )
    if "storm" in notes:
        notes["operator_409s"] = sum(1 for e in entries if e.user in replicas and e.code == 409)
    if "stolen_at" in notes:
        stolen = notes["stolen_at"]
        notes["writes_by_new_holder"] = sum(
            1 for e in entries if e.user == replicas[1] and e.is_write and not e.is_lease and e.received > stolen
        )
        notes["old_leader_writes_after_steal"] = sum(
            1 for e in entries if e.user == replicas[0] and e.is_write and not e.is_lease and e.received > stolen
        )
    if "thawed_at" in notes:
        notes["frozen_mid_pass"] = chaos.applies_cut(entries, replicas[0], trial.release.name, notes["frozen_at"])
        notes["writes_by_thawed_leader"] = sum(
            1
            for e in entries
            if e.user == replicas[0] and e.is_write and not e.is_lease and e.received > notes["thawed_at"]
        )
    if trial.lease and len(replicas) > 1:
        notes["writes_while_another_held"] = len(chaos.writes_while_another_held(entries, replicas, trial.lease))


def _start_replicas(operators: list[scenario.OperatorProcess], admin: Any, lease: LeaseRef) -> None:
    """Start every replica at once; order ``operators`` leader first (the one the faults aim at)."""
    with ThreadPoolExecutor(len(operators)) as pool:
        for future in [pool.submit(o.start) for o in operators]:
            future.result()
    identities = [o.identity for o in operators]

    def leader() -> str | None:
        holder = chaos.lease_holder(admin, lease)
        return holder if holder in identities else None

    holder = chaos.poll(leader, 30, message="a replica holds the Lease")
    operators.sort(key=lambda o: o.identity != holder)


def run_trial(env: ChaosEnv, fault_name: str, model: str, seed: int) -> TrialResult:
    """One rollout from v1 to the good or bad model with one fault injected, judged on what was recorded."""
    fault = FAULTS[fault_name]
    candidate, expected = MODELS[model]
    rng = random.Random(seed)
    env.work.mkdir(parents=True, exist_ok=True)
    clock = {"begin": time.monotonic()}
    namespace = _namespace(env, fault_name)
    lease = LeaseRef("default", f"chaos-{namespace}", fault.lease_seconds)
    operators = _operators(env, namespace, lease, fault.replicas)
    admin = env.cluster.api_client()
    release = scenario.Release(env.cluster, namespace)
    # From before the replicas start: their every Lease access is evidence, and v1's setup is judged too.
    offset = audit.size(env.audit_log)
    try:
        _start_replicas(operators, admin, lease)
        release.apply(manifest(namespace, STABLE_VERSION))
        # Traffic starts while v1 comes up: waiting for Prometheus to scrape it overlaps the pod's start.
        with traffic(env.cluster, namespace, release.name, seed, TRAFFIC_RATE, ROLLOUT_TIMEOUT * 2):
            stable = release.wait_phase("Succeeded", 120, also=lambda s: s.get("stableVersion") == STABLE_VERSION)
            history_start = len(stable.get("history") or [])
            deployments, snapshots = deployments_recorder(env.cluster, namespace, release.name)
            with deployments, ReleaseWatch(env.cluster, namespace, release.name, history_start) as watch:
                trial = Trial(env, rng, namespace, release, operators, lease, watch, audit_offset=offset)
                clock["rollout"] = time.monotonic()
                started = time.time()
                release.set_version(candidate)
                fault.inject(trial)
                with contextlib.suppress(TimeoutError):
                    chaos.poll(
                        watch.ended_at, ROLLOUT_TIMEOUT - (time.time() - started), interval=0.2, message="verdict"
                    )
                ended = watch.ended_at()
                trial.settle()
                final = chaos.poll(release.status, 60, message="final status")
        clock["judge"] = time.monotonic()
        entries, _ = audit.read(env.audit_log, offset)
        _describe_effects(trial, entries)
        trial.notes["watch_gaps"] = deployments.gaps + watch.recorder.gaps
        record = TrialRecord(
            fault=fault_name,
            expected_phase=expected,
            stable_version=STABLE_VERSION,
            candidate_version=candidate,
            capacity=CAPACITY,
            stages=tuple(s["name"] for s in STAGES),
            history_start=history_start,
            final_status=final,
            deployments=snapshots,
            audit=entries,
            replicas=tuple(o.identity for o in operators),
            lease=lease,
            prometheus_down=trial.prometheus_down,
        )
        trial.notes["setup_s"] = round(clock["rollout"] - clock["begin"], 1)
        trial.notes["trial_s"] = round(clock["judge"] - clock["begin"], 1)
        return TrialResult(
            fault=fault_name,
            model=model,
            seed=seed,
            seconds=None if ended is None else round(ended - started, 1),
            violations=chaos.check_trial(record),
            notes=trial.notes,
            record=record,
            operator_logs=[o.log_path for o in operators],
        )
    finally:
        for operator in operators:
            # SIGKILL: quick, and nothing after the verdict is judged (the Lease goes with the namespace's trial).
            if operator.process is not None and operator.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    chaos.thaw(operator.process.pid)
            operator.kill()
        env.cluster.kubectl("delete", "lease", lease.name, "-n", lease.namespace, "--ignore-not-found", check=False)
        env.cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


# ---- several trials ---------------------------------------------------------------------------------------------


Plan = tuple[str, str, int]
"""A trial to run: fault, model ("good" or "bad"), seed."""


def run_trials(env: ChaosEnv, plan: list[Plan], parallel: int = 1) -> list[TrialResult | Exception]:
    """Trials in ``plan`` order: those with local faults ``parallel`` at a time, then cluster-wide ones alone.

    A trial that could not run (its setup failed) is returned as its exception,
    so the others still run and each is reported on its own.
    """

    def one(item: Plan) -> TrialResult | Exception:
        try:
            return run_trial(env, *item)
        except Exception as error:
            return error

    results: dict[int, TrialResult | Exception] = {}
    local = [i for i, item in enumerate(plan) if not FAULTS[item[0]].cluster_wide]
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for index, result in zip(local, pool.map(one, [plan[i] for i in local]), strict=True):
            results[index] = result
    for index, item in enumerate(plan):
        if index not in results:
            results[index] = one(item)
    return [results[i] for i in range(len(plan))]
