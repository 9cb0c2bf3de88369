"""``make demo``: a real rollout on a local cluster, v1 -> v2 promoted -> v3 rolled back, watched live.

What runs is what the e2e tests run (devstack.scenario): devstack's API
server, pod runner, Prometheus and Traefik, the operator as a process, model
servers with real SavedModels and labelled traffic.  The release uses the
gatewayApi router, so users reach the model through Traefik following the
HTTPRoute the operator edits: v2 walks every stage (smoke, shadow, canary,
A/B cohort, full) and v3, a worse model, is rolled back in the shadow stage,
judged on mirrored copies of live traffic, without any user seeing one of
its answers.  Nothing is staged for the camera: the operator decides from
Prometheus, and the demo only changes ``spec.model.version`` as a Git commit
would, then watches the status.

Exit status 0 only if v2 ended Succeeded and v3 RolledBack in its shadow
stage with no user answered by it; 1 if a rollout ended otherwise or did
not end in time; 2 if the stage could not be set up.
Without a terminal (CI) progress is plain lines instead of a live view.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from devstack import cluster as devstack_cluster
from devstack import scenario
from devstack.state import StateDir, default_state_dir
from devstack.testing import Cluster, connect, fresh_namespace, wait_for

RELEASE_FILE = scenario.REPO / "examples" / "digits" / "demo" / "release.yaml"
ROUTE_FILE = scenario.REPO / "examples" / "digits" / "demo" / "httproute.yaml"
COHORT = {"x-cohort": "b"}
COHORT_SHARE = 0.3
"""Share of the demo's users in the A/B cohort (they send ``x-cohort: b``)."""
TRAFFIC_RATE = 40.0
TRAFFIC_WINDOW = 5.0
"""Seconds of answers the "users served by" line is measured over."""
REFRESH = 0.5
VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
PHASE_STYLE = {"Succeeded": "green", "RolledBack": "red", "Failed": "bold red", "Paused": "yellow"}


@dataclass(frozen=True)
class Step:
    version: int
    story: str
    expected: str
    timeout: float


STEPS = (
    Step(1, "first version: stable without stages", "Succeeded", 180.0),
    Step(2, "a better model: smoke, shadow, canary, A/B cohort, full", "Succeeded", 360.0),
    Step(3, "a worse model: caught in the shadow stage, no user sees it", "RolledBack", 240.0),
)


class DemoError(Exception):
    """The demo could not run (setup, the operator died, a rollout did not end in time); exit status in ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StepResult:
    step: Step
    phase: str = "-"
    seconds: float = 0.0
    why: str = ""
    stages: list[tuple[str, float]] = field(default_factory=list)
    """Stages in the order entered, with the seconds spent in each."""

    @property
    def ok(self) -> bool:
        return self.phase == self.step.expected


class TrafficWindow:
    """Answers users got per version over the last few seconds, from the generator's own counts."""

    def __init__(self, generator: Any, seconds: float = TRAFFIC_WINDOW) -> None:
        self.generator = generator
        self.seconds = seconds
        self.samples: deque[tuple[float, Any]] = deque()

    def shares(self) -> tuple[dict[str, float], int]:
        now = time.monotonic()
        stats = self.generator.stats
        self.samples.append((now, stats))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.seconds:
            self.samples.popleft()
        before = self.samples[0][1]
        answers = {v: n - before.versions.get(v, 0) for v, n in stats.versions.items()}
        answers = {v: n for v, n in answers.items() if n > 0}
        total = sum(answers.values())
        return ({v: 100.0 * n / total for v, n in sorted(answers.items())} if total else {}), total


class Display:
    """A live view on a terminal; plain lines (only when something changed) without one."""

    def __init__(self, console: Console, namespace: str, live: bool) -> None:
        self.console = console
        self.namespace = namespace
        self.live: Live | None = Live(console=console, refresh_per_second=4, transient=False) if live else None
        self.last_line = ""
        self.events_seen: set[str] = set()

    def __enter__(self) -> Display:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def say(self, message: str) -> None:
        self.console.print(message)

    def show(
        self, step: Step, index: int, elapsed: float, status: dict[str, Any], users: Any, events: list[Any]
    ) -> None:
        if self.live is not None:
            self.live.update(self._view(step, index, elapsed, status, users, events))
            return
        for event in events:
            key = event.get("metadata", {}).get("uid", "") + str(event.get("count", ""))
            if key not in self.events_seen:
                self.events_seen.add(key)
                self.console.print(f"  [{elapsed:6.1f}s] event {event.get('reason')}: {event.get('message')}")
        line = _plain_line(status)
        if line != self.last_line:
            self.last_line = line
            shares, _ = users
            self.console.print(f"  [{elapsed:6.1f}s] {line} | users {_shares_text(shares)}")

    def _view(
        self, step: Step, index: int, elapsed: float, status: dict[str, Any], users: Any, events: list[Any]
    ) -> RenderableType:
        header = Text.assemble(
            ("modelrelease demo", "bold"),
            f"  namespace {self.namespace}  step {index}/{len(STEPS)}: v{step.version}, {step.story} ",
            (f"(expect {step.expected})", "dim"),
            f"  {elapsed:5.1f}s",
        )
        phase = status.get("phase", "-")
        stage = status.get("stage") or {}
        analysis = status.get("analysis") or {}
        summary = Table.grid(padding=(0, 2))
        summary.add_row(
            "phase",
            Text(phase, style=PHASE_STYLE.get(phase, "cyan")),
            "stable",
            _version(status.get("stableVersion")),
            "candidate",
            _version(status.get("candidateVersion")),
        )
        stage_text = f"{stage['name']} ({stage.get('index', 0) + 1})" if stage else "-"
        summary.add_row(
            "stage",
            stage_text,
            "weight",
            f"desired {stage.get('weight', 0)}%  actual {stage.get('actualWeight', 0)}%" if stage else "-",
            "checks",
            f"{analysis.get('passed', 0)} passed  {analysis.get('failures', 0)} failed  "
            f"{analysis.get('inconclusive', 0)} inconclusive",
        )
        shares, total = users
        summary.add_row(
            "users", f"{_shares_text(shares)}  ({total} answers, last {TRAFFIC_WINDOW:.0f}s)", "", "", "", ""
        )
        metrics = Table(title="analysis: candidate vs stable (latest check)", title_justify="left", expand=False)
        for column in ("metric", "candidate", "stable", "verdict", "samples", "why"):
            metrics.add_column(column, overflow="fold")
        for metric in analysis.get("metrics") or []:
            verdict = metric.get("verdict", "")
            metrics.add_row(
                metric.get("name", ""),
                _number(metric.get("candidate")),
                _number(metric.get("baseline")),
                Text(verdict, style=VERDICT_STYLE.get(verdict, "")),
                str(metric.get("samples") or "-"),
                (metric.get("message") or "")[:70],
            )
        recent = Table(title="events", title_justify="left", show_header=False, box=None)
        for event in events[-6:]:
            style = "red" if event.get("type") == "Warning" else ""
            recent.add_row(Text(event.get("reason", ""), style=style), (event.get("message") or "")[:110])
        message = Text(status.get("message", ""), style="dim")
        return Group(header, summary, message, metrics, recent)


def _version(value: Any) -> str:
    return f"v{value}" if value is not None else "-"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def _shares_text(shares: dict[str, float]) -> str:
    return "  ".join(f"v{v} {share:.0f}%" for v, share in shares.items()) or "none yet"


def _plain_line(status: dict[str, Any]) -> str:
    stage = status.get("stage") or {}
    analysis = status.get("analysis") or {}
    parts = [
        f"{status.get('phase', '-')}",
        f"stable {_version(status.get('stableVersion'))}",
        f"candidate {_version(status.get('candidateVersion'))}",
    ]
    if stage:
        parts.append(
            f"stage {stage.get('name')} weight {stage.get('weight', 0)}%/actual {stage.get('actualWeight', 0)}%"
        )
        parts.append(
            f"checks {analysis.get('passed', 0)}/{analysis.get('failures', 0)}/{analysis.get('inconclusive', 0)}"
        )
    verdicts = [
        f"{m.get('name')} {_number(m.get('candidate'))} vs {_number(m.get('baseline'))} {m.get('verdict')}"
        for m in analysis.get("metrics") or []
    ]
    if verdicts:
        parts.append("; ".join(verdicts))
    return " | ".join(parts)


def _ended(release: dict[str, Any], version: int) -> bool:
    """The operator has seen this version's commit and the rollout is over (handover included)."""
    metadata, status = release["metadata"], release.get("status") or {}
    if status.get("observedGeneration") != metadata.get("generation"):
        return False
    if status.get("candidateVersion") is not None or status.get("retiringVersion") is not None:
        return False
    phase = status.get("phase")
    if phase == "Succeeded":
        return bool(status.get("stableVersion") == version)
    return phase in ("RolledBack", "Failed")


def _outcome_reason(status: dict[str, Any], version: int) -> str:
    decisive = ("Promoted", "RolledBack", "Aborted", "Failed")
    for entry in reversed(status.get("history") or []):
        if entry.get("version") == version and entry.get("outcome") in decisive:
            where = f" at {entry['stage']}" if entry.get("stage") else ""
            return f"{entry['outcome']}{where}: {entry.get('message') or entry.get('reason', '')}"
    return str(status.get("message", ""))


def run_step(
    index: int,
    step: Step,
    release: scenario.Release,
    operator: scenario.OperatorProcess,
    users: TrafficWindow | None,
    display: Display,
) -> StepResult:
    manifest = scenario.load_manifest(RELEASE_FILE, step.version)
    started = time.monotonic()
    if index == 1:
        release.apply(manifest)
    else:
        release.set_version(step.version)
    result = StepResult(step)
    entered: dict[str, float] = {}

    def ended() -> dict[str, Any] | None:
        operator.healthy()  # raises with the log tail if the operator died
        current = release.get()
        status = current.get("status") or {}
        now = time.monotonic()
        stage = (status.get("stage") or {}).get("name")
        if stage and status.get("candidateVersion") == step.version and stage not in entered:
            entered[stage] = now
        events = release.events()
        if users is not None and users.generator.error is not None:
            raise DemoError(f"the traffic generator stopped: {users.generator.error!r}")
        shares = users.shares() if users is not None else ({}, 0)
        display.show(step, index, now - started, status, shares, events)
        return status if _ended(current, step.version) else None

    try:
        status = wait_for(ended, step.timeout, interval=REFRESH, message=f"v{step.version}'s rollout to end")
    except TimeoutError as exc:
        raise DemoError(f"v{step.version}: {exc}") from exc
    assert status is not None
    finished = time.monotonic()
    result.seconds = finished - started
    result.phase = status.get("phase", "-")
    result.why = _outcome_reason(status, step.version)
    names = list(entered)
    for i, name in enumerate(names):
        until = entered[names[i + 1]] if i + 1 < len(names) else finished
        result.stages.append((name, until - entered[name]))
    mark = "[green]as expected[/]" if result.ok else f"[bold red]expected {step.expected}[/]"
    display.say(f"v{step.version}: {result.phase} after {result.seconds:.1f}s ({mark}) - {result.why}")
    return result


def summary_table(results: list[StepResult], wall: float) -> Table:
    table = Table(title=f"modelrelease demo: {wall:.0f}s wall time", title_justify="left")
    for column in ("step", "version", "expected", "outcome", "time", "stages (seconds in each)", "why"):
        table.add_column(column, overflow="fold")
    for index, result in enumerate(results, 1):
        style = "green" if result.ok else "bold red"
        table.add_row(
            str(index),
            f"v{result.step.version}",
            result.step.expected,
            Text(result.phase, style=style),
            f"{result.seconds:.1f}s",
            ", ".join(f"{name} {seconds:.0f}" for name, seconds in result.stages) or "-",
            result.why,
        )
    return table


@contextlib.contextmanager
def demo_cluster(state: StateDir, console: Console) -> Iterator[Cluster]:
    """devstack for the demo: reused if running (and then left running), else started here and stopped after.

    The demo registers as a user like a test session does, so a session that
    shares this devstack never stops it under the demo, nor the demo under it.
    """
    me = state.users / str(os.getpid())
    state.users.mkdir(parents=True, exist_ok=True)
    me.write_text(str(time.time()))
    was_running = devstack_cluster.is_running(state, patience=10.0)
    try:
        console.print("reusing the running devstack" if was_running else "starting devstack ...")
        try:
            devstack_cluster.up(state, started_by="demo")
        except Exception as exc:  # a DevstackError or a missing build: say what to do
            raise DemoError(f"devstack could not start: {exc}\n(did `make setup` run?)", code=2) from exc
        handle = connect(state)
        if not handle.prometheus_url:
            raise DemoError("devstack runs without Prometheus; the operator cannot judge anything", code=2)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        with state.locked():
            me.unlink(missing_ok=True)
            record = state.read()
            if not was_running and record is not None and record.started_by == "demo" and not state.live_users():
                console.print("stopping the devstack the demo started")
                devstack_cluster.down_locked(state)


@contextlib.contextmanager
def operator_running(cluster: Cluster, namespace: str, log_path: Path) -> Iterator[scenario.OperatorProcess]:
    operator = scenario.OperatorProcess(
        cluster=cluster,
        namespaces=namespace,
        log_path=log_path,
        identity=f"demo-{os.getpid()}",
        lease_name=f"modelrelease-{namespace}",
    )
    try:
        operator.start()
    except (RuntimeError, TimeoutError) as exc:
        operator.stop()
        raise DemoError(f"the operator did not start: {exc}\nlog: {log_path}", code=2) from exc
    try:
        yield operator
    finally:
        operator.stop()
        operator.delete_lease()


def run(console: Console, live: bool, state: StateDir, results: list[StepResult]) -> None:
    with demo_cluster(state, console) as cluster:
        scenario.install_crd(cluster)
        with fresh_namespace(cluster, "demo") as namespace:
            log_path = state.root / "demo" / f"operator-{namespace}.log"
            scenario.apply_golden_set(cluster, namespace)
            route = yaml.safe_load(ROUTE_FILE.read_text())
            route["metadata"]["namespace"] = namespace
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(route))
            console.print(f"namespace {namespace}; operator log {log_path}")
            console.print(
                f"watch it yourself: kubectl --kubeconfig {cluster.kubeconfig} get mr,deploy,pods -n {namespace}"
            )
            with operator_running(cluster, namespace, log_path) as operator:
                release = scenario.Release(cluster, namespace)
                try:
                    with Display(console, namespace, live) as display:
                        # Users arrive once v1 serves (the traffic generator needs the release's Service).
                        results.append(run_step(1, STEPS[0], release, operator, None, display))
                        display.say(
                            f"starting labelled traffic through Traefik ({TRAFFIC_RATE:.0f} requests/s, "
                            f"{COHORT_SHARE:.0%} of users in the x-cohort: b cohort) ..."
                        )
                        with scenario.traffic(
                            cluster,
                            namespace,
                            rate=TRAFFIC_RATE,
                            duration=3600.0,
                            http_route="digits",
                            headers=COHORT,
                            header_share=COHORT_SHARE,
                        ) as generator:
                            users = TrafficWindow(generator)
                            for index, step in enumerate(STEPS[1:], 2):
                                results.append(run_step(index, step, release, operator, users, display))
                            _check_bad_model_unseen(generator, results[-1], display)
                except DemoError as exc:
                    tail = operator.log_tail(30)
                    raise DemoError(f"{exc}\nlast lines of the operator log ({log_path}):\n{tail}") from exc
                except RuntimeError as exc:  # operator.healthy(): it exited; the message has its log
                    raise DemoError(str(exc)) from exc
                console.print(f"operator RSS {operator.rss_mb():.0f} MB")


def _check_bad_model_unseen(generator: Any, result: StepResult, display: Display) -> None:
    """The bad model must have been judged on mirrored copies only: no user answered by it."""
    stats = generator.stats
    version = str(result.step.version)
    seen = stats.versions.get(version, 0)
    mirrored = stats.outcomes.get((version, "correct"), 0) + stats.outcomes.get((version, "incorrect"), 0)
    display.say(f"v{version}: {mirrored} mirrored copies judged, {seen} users answered by it")
    if seen:
        result.phase = f"{result.phase} (but {seen} users saw v{version})"
    elif "shadow" not in result.why:
        result.phase = f"{result.phase} (not in the shadow stage)"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a log file is not wrapped at 80 columns
    live = console.is_terminal and not args.plain
    # SIGTERM (a CI cancel) cleans up like Ctrl-C: operator, traffic, namespace, and the devstack if ours.
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[StepResult] = []
    started = time.monotonic()
    code = 0
    try:
        run(console, live, StateDir(default_state_dir()), results)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        code = exc.code
    except KeyboardInterrupt:
        console.print("interrupted; cleaned up")
        return 130
    if results:
        console.print(summary_table(results, time.monotonic() - started))
    wrong = [r for r in results if not r.ok]
    if wrong:
        text = "; ".join(f"v{r.step.version} ended {r.phase}, expected {r.step.expected}" for r in wrong)
        console.print(f"[bold red]demo failed:[/] {text}")
        return 1
    if code == 0:
        console.print(
            "[green]demo passed:[/] v2 was promoted through every stage and v3 rolled back from shadow (no user saw "
            "it), decided by the operator from Prometheus"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
