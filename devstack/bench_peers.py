"""`make bench-peers`: the same model change released through the operator, Flagger and Argo Rollouts on one devstack.

Why: issue 17 asks that our claims against the peers be measured side by
side, not asserted.  Each scenario (v1 stable then v3, accuracy 0.445 against
0.955; v2 then v5, 2.8 points worse; v1 then v5, statistically the same) runs
at a rate through each tool on the same devstack, model pods, Prometheus and
traffic generator.  Per tool and run it measures:

- requests answered by the candidate between the version change and the
  end of the release (the traffic generator's own count of answers by
  version, which is what users saw);
- seconds from the version change to the release's end: rolled back (the
  tool says so and its router gives the candidate weight 0) or promoted;
- the outcome, so false rollbacks (of v5 after v1) and promotions of a bad
  version are counted;
- the controller's RSS at the end and CPU seconds over the run (from /proc);
- its API requests per second, from devstack's audit log by user agent
  (the bench has the API server log every request: ``audit.EVERY_REQUEST_ENV``),
  and among them the writes (and Lease reads) that the tests' devstack logs
  too, which the runs before every request was logged have alone.

Every tool gets the same stage weights (10, 20, 30, 40, 50 %, then full), the
same analysis interval and the same accuracy query over
``model_prediction_outcomes_total`` (docs/metrics.md): our ``ratio`` metric,
Flagger's MetricTemplate, Argo Rollouts' AnalysisTemplate with its
Prometheus provider.  Each tool judges as its documentation recommends: the
peers a threshold (accuracy >= 0.9, rollback at 2 failed checks), the
operator its sequential test against the stable version
(``compareToBaseline.maxDrop``) after its golden-set smoke stage
(``--no-smoke`` leaves the smoke stage out).  The interval is ``--interval``
(default 10 s), shorter than the peers' documented one minute, so that a run
takes about a minute; the table says so.

Flagger and the operator shift the weights of an HTTPRoute that devstack's
Traefik serves; Argo Rollouts those of a TraefikService that a second
Traefik (the CRD provider) serves (devstack.peers).  Each run has its own
namespace and controller processes.  Every run is appended to a results
file (``--results``), and the table is built from all runs in it, so runs
added later (more per cell, other scenarios and rates) accumulate.  The file
is part of the repository (docs/data/), not of the machine's cache: the
runs of one session are the evidence for the table, and a cache does not
outlive its machine (the first runs, before this, were lost with theirs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devstack import audit, peers, processes, scenario
from devstack.benchdoc import DOCS, write_section
from devstack.state import StateDir
from devstack.testing import Cluster, session_cluster, wait_for

MODEL = "digits"
WEIGHTS = (10, 20, 30, 40, 50)
MIN_ACCURACY = 0.9
"""The peers fail a check below this accuracy (v1 measures 0.955, v2 0.981, v3 0.445, v5 0.953)."""
MAX_DROP = 0.02
"""The operator fails a candidate whose accuracy is below the stable version's by more than this."""
FAILED_CHECKS = 2
"""Failed checks that roll back: Flagger's ``threshold``; Argo's ``failureLimit`` + 1; the operator's ``failureLimit``."""
WINDOW = "30s"
SCENARIOS: dict[str, tuple[int, int, bool]] = {
    "v1-v3": (1, 3, True),
    "v2-v5": (2, 5, True),
    "v1-v5": (1, 5, False),
}
"""name: (stable, candidate, candidate is bad)."""
TOOLS = ("operator", "flagger", "argo-rollouts")
RATES = (2.0, 10.0, 50.0)
"""The rates issue 17 asks for; the table lists every one, measured or not."""
NO_SMOKE = "operator, no smoke"
"""The operator's row without its smoke stage (``--no-smoke``): the peers' stages exactly, judged its way."""
AGENTS = {
    "operator": ("kopf/", "Python/", "OpenAPI-Generator/"),
    "flagger": ("flagger/",),
    "argo-rollouts": ("rollouts-controller/",),
}
"""Prefixes of each controller's user agents in the audit log (the operator: kopf's aiohttp and the Python client).

The bench itself calls the API with kubectl and a client named ``testing.HARNESS_AGENT``, so the operator's prefixes
count the operator alone (the operator's Kubernetes client and the bench's once had the same agent)."""
COUNTED = frozenset({"leases", "deployments", "services", "configmaps", "events"})
"""The resources devstack's audit policy logs for every tool: each tool's own custom resources (ModelRelease,
Canary, Rollout), HTTPRoutes and TraefikServices are not logged for all, so none of them is counted."""
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "data" / "bench-peers-runs.jsonl"


def accuracy_query(namespace: str, version: int | str, window: str) -> str:
    """Accuracy of ``version`` over ``window``, from the traffic generator of ``namespace`` (job ``traffic-<ns>``)."""
    selector = f'model="{MODEL}",version="{version}",job="traffic-{namespace}"'
    return (
        f'sum(increase(model_prediction_outcomes_total{{{selector},outcome="correct"}}[{window}])) / '
        f"sum(increase(model_prediction_outcomes_total{{{selector}}}[{window}]))"
    )


@dataclass
class Run:
    tool: str
    scenario: str
    rate: float
    candidate_answers: int
    seconds: float | None
    outcome: str
    """``rolled back``, ``promoted``, or why neither happened."""
    rss_mib: float
    cpu_seconds: float
    api_writes_per_second: float | None
    """Leases read and written, Deployments, Services, ConfigMaps and Events written (``COUNTED``), per second."""
    interval: str = "10s"
    smoke: bool = True
    started: float = 0.0
    api_requests_per_second: float | None = None
    """Every request in the run's namespace or cluster-wide, a watch counted when it starts; None for runs made
    before the bench logged every request."""


def say(text: str) -> None:
    print(f"bench-peers: {text}", flush=True)


def _get(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else {}


def _route_weight(cluster: Cluster, namespace: str, backend: str) -> int:
    """The weight the HTTPRoute ``MODEL`` gives ``backend`` over all its rules (0 when absent)."""
    route = _get(cluster, "httproute", MODEL, namespace)
    rules = route.get("spec", {}).get("rules") or []
    return sum(int(r.get("weight", 1)) for rule in rules for r in rule.get("backendRefs") or [] if r["name"] == backend)


@contextmanager
def _namespace(cluster: Cluster, tool: str, versions: tuple[int, ...]) -> Iterator[str]:
    name = f"bench-peers-{tool}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    try:
        wait_for(
            lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            30,
            message=f"default ServiceAccount in {name}",
        )
        if versions:
            cluster.apply([peers.version_config_map(MODEL, v) for v in versions], namespace=name)
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@contextmanager
def _running(*processes: peers.PeerProcess) -> Iterator[None]:
    try:
        for process in processes:
            process.start()
            wait_for(process.healthy, 60, interval=0.3, message=f"{process.name} healthy")
        yield
    finally:
        for process in reversed(processes):
            process.stop()


def api_counts(log: Path, offset: int, agents: tuple[str, ...], namespace: str) -> tuple[int, int]:
    """(writes, requests) by user agents ``agents...`` logged from byte ``offset`` on.

    Writes: writes to ``COUNTED`` resources and Lease reads in ``namespace``,
    what the tests' devstack logs too.  Requests: every request in
    ``namespace`` or cluster-wide (one tool's controller runs at a time), a
    watch counted when it starts (it completes when it ends, maybe after the
    run); 0 unless the API server logs every request (``audit.EVERY_REQUEST_ENV``).
    """
    writes = requests = 0
    with open(log, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            event = json.loads(line)
            if not str(event.get("userAgent", "")).startswith(agents):
                continue
            ref = event.get("objectRef") or {}
            verb, stage = event.get("verb"), event.get("stage")
            if ref.get("namespace", "") not in (namespace, ""):
                continue
            if stage == ("ResponseStarted" if verb == "watch" else "ResponseComplete"):
                requests += 1
            resource = ref.get("resource")
            written = verb in audit.WRITE_VERBS or (resource == "leases" and verb == "get")
            if stage == "ResponseComplete" and written and resource in COUNTED and ref.get("namespace") == namespace:
                writes += 1
    return writes, requests


@dataclass
class Target:
    """What _measure needs from a tool: its controller's pid, how to change the version, how to tell the end."""

    tool: str
    pid: int
    change: Callable[[], None]
    ended: Callable[[], str | None]


def _measure(
    cluster: Cluster, target: Target, namespace: str, name: str, rate: float, generator: Any, timeout: float
) -> dict[str, Any]:
    """Change the version, wait for the end, and count what users got from the candidate meanwhile: Run's fields."""
    log = audit.log_path(StateDir(cluster.state_dir).logs)
    offset = audit.size(log)
    cpu_before = peers.cpu_seconds(target.pid)
    before = generator.stats.copy()
    candidate = str(SCENARIOS[name][1])
    started = time.monotonic()
    target.change()
    outcome: str | None = None
    try:
        outcome = wait_for(target.ended, timeout, interval=0.25, message=f"{target.tool} ends the release")
        seconds: float | None = time.monotonic() - started
    except TimeoutError:
        seconds, outcome = None, f"neither within {timeout:.0f} s"
    elapsed = time.monotonic() - started
    # Answers in flight when the weight went to 0 still count: wait for another second's worth of answers.
    at_end = generator.stats.answered
    wait_for(lambda: generator.stats.answered - at_end >= rate, 10, message="answers after the end")
    after = generator.stats
    answers = after.versions.get(candidate, 0) - before.versions.get(candidate, 0)
    writes, requests = api_counts(log, offset, AGENTS[target.tool], namespace)
    return {
        "candidate_answers": answers,
        "seconds": seconds,
        "outcome": outcome or "",
        "rss_mib": processes.rss_kib(target.pid) / 1024,
        "cpu_seconds": peers.cpu_seconds(target.pid) - cpu_before,
        "api_writes_per_second": writes / elapsed,
        "api_requests_per_second": requests / elapsed if requests else None,
    }


def run_flagger(cluster: Cluster, name: str, rate: float, interval: str, log_dir: Path, timeout: float) -> Run:
    assert cluster.prometheus_url, "devstack runs no Prometheus"
    stable, candidate, _bad = SCENARIOS[name]
    with _namespace(cluster, "flagger", (stable, candidate)) as namespace:
        flagger = peers.flagger_process(cluster.kubeconfig, namespace, cluster.prometheus_url, log_dir)
        template = {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "accuracy"},
            "spec": {
                "provider": {"type": "prometheus", "address": cluster.prometheus_url},
                "query": accuracy_query(namespace, candidate, "{{ interval }}"),
            },
        }
        analysis = {
            "interval": interval,
            "threshold": FAILED_CHECKS,
            "stepWeight": WEIGHTS[0],
            "maxWeight": WEIGHTS[-1],
            "metrics": [
                {
                    "name": "accuracy",
                    "templateRef": {"name": "accuracy"},
                    "thresholdRange": {"min": MIN_ACCURACY},
                    "interval": WINDOW,
                }
            ],
        }
        with _running(flagger):
            cluster.apply([template, *peers.flagger_objects(MODEL, MODEL, stable, analysis)], namespace=namespace)

            def phase() -> str:
                return str(_get(cluster, "canary", MODEL, namespace).get("status", {}).get("phase", ""))

            wait_for(lambda: phase() == "Initialized", 180, interval=0.5, message="Canary Initialized")
            with scenario.traffic(cluster, namespace, rate=rate, duration=3600, http_route=MODEL) as generator:
                patch = json.dumps(peers.set_version_patch(MODEL, candidate))

                def change() -> None:
                    cluster.kubectl("patch", "deployment", MODEL, "-n", namespace, "--type=strategic", "-p", patch)

                def ended() -> str | None:
                    current = phase()
                    if current == "Succeeded":
                        return "promoted"
                    canary = _route_weight(cluster, namespace, f"{MODEL}-canary")
                    return "rolled back" if current == "Failed" and canary == 0 else None

                measured = _measure(
                    cluster, Target("flagger", flagger.pid, change, ended), namespace, name, rate, generator, timeout
                )
    return Run("flagger", name, rate, interval=interval, smoke=False, **measured)


def run_argo(cluster: Cluster, name: str, rate: float, interval: str, log_dir: Path, timeout: float) -> Run:
    from devstack.traffic import TrafficConfig, running
    from devstack.traffic.kube import resolver_for_service

    assert cluster.prometheus_url, "devstack runs no Prometheus"
    stable, candidate, _bad = SCENARIOS[name]
    with _namespace(cluster, "argo", (stable, candidate)) as namespace:
        traefik, address = peers.traefik_crd_process(cluster.kubeconfig, namespace, log_dir)
        argo = peers.argo_rollouts_process(cluster.kubeconfig, namespace, log_dir)
        template = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "accuracy"},
            "spec": {
                "metrics": [
                    {
                        "name": "accuracy",
                        "interval": interval,
                        "initialDelay": interval,
                        "failureLimit": FAILED_CHECKS - 1,
                        "successCondition": f"result[0] >= {MIN_ACCURACY}",
                        "provider": {
                            "prometheus": {
                                "address": cluster.prometheus_url,
                                "query": accuracy_query(namespace, candidate, WINDOW),
                            }
                        },
                    }
                ]
            },
        }
        steps: list[dict[str, Any]] = []
        for weight in WEIGHTS:
            steps += [{"setWeight": weight}, {"pause": {"duration": interval}}]
        objects = peers.argo_objects(MODEL, MODEL, stable, steps)
        objects[-1]["spec"]["strategy"]["canary"]["analysis"] = {"templates": [{"templateName": "accuracy"}]}
        with _running(traefik, argo):
            cluster.apply([template, *objects], namespace=namespace)

            def rollout() -> dict[str, Any]:
                return _get(cluster, "rollout", MODEL, namespace)

            wait_for(
                lambda: rollout().get("status", {}).get("phase") == "Healthy", 180, interval=0.5, message="Healthy"
            )
            resolver = resolver_for_service(
                cluster.kubeconfig, namespace, f"{MODEL}-stable", router="gateway", route_name="-", gateway=address
            )
            config = TrafficConfig(model=MODEL, rate=rate, duration=3600, seed=int(time.time()) % 1000)
            with running(
                config,
                resolver,
                register_prometheus=cluster.state_dir,
                job=f"traffic-{namespace}",
                scraped_by=cluster.prometheus_url,
            ) as generator:
                patch = json.dumps(peers.set_version_patch(MODEL, candidate))

                def change() -> None:
                    cluster.kubectl("patch", "rollout", MODEL, "-n", namespace, "--type=merge", "-p", patch)

                first_stable = rollout()["status"]["stableRS"]

                def ended() -> str | None:
                    status = rollout().get("status", {})
                    if status.get("stableRS") != first_stable:
                        return "promoted"
                    service = _get(cluster, "traefikservice", f"{MODEL}-weighted", namespace)
                    weights = {s["name"]: int(s["weight"]) for s in service["spec"]["weighted"]["services"]}
                    aborted = bool(status.get("abort"))
                    return "rolled back" if aborted and weights.get(f"{MODEL}-canary") == 0 else None

                measured = _measure(
                    cluster, Target("argo-rollouts", argo.pid, change, ended), namespace, name, rate, generator, timeout
                )
    return Run("argo-rollouts", name, rate, interval=interval, smoke=False, **measured)


def operator_release(namespace: str, version: int, interval: str, smoke: bool) -> dict[str, Any]:
    """The ModelRelease: the same stage weights, then the operator's recommended judge (sequential, vs stable)."""
    stages: list[dict[str, Any]] = []
    if smoke:
        stages.append(
            {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": MIN_ACCURACY}}
        )
    stages += [{"name": f"canary-{w}", "weight": w, "duration": interval} for w in WEIGHTS]
    stages.append({"name": "full", "weight": 100})
    ratio = {
        "success": f'sum(increase(model_prediction_outcomes_total{{model="{{{{model}}}}",version="{{{{version}}}}",'
        f'job="traffic-{namespace}",outcome="correct"}}[{{{{interval}}}}]))',
        "total": f'sum(increase(model_prediction_outcomes_total{{model="{{{{model}}}}",version="{{{{version}}}}",'
        f'job="traffic-{namespace}"}}[{{{{interval}}}}]))',
    }
    return scenario.digits_release(
        MODEL,
        namespace,
        version,
        1,
        traffic={"router": "gatewayApi", "gatewayApi": {"httpRoute": MODEL}},
        stages=stages,
        analysis={
            "interval": interval,
            "failureLimit": FAILED_CHECKS,
            "metrics": [
                {
                    "name": "accuracy",
                    "ratio": ratio,
                    "min": MIN_ACCURACY,
                    "compareToBaseline": {"maxDrop": MAX_DROP},
                }
            ],
        },
    )


def run_operator(
    cluster: Cluster, name: str, rate: float, interval: str, log_dir: Path, timeout: float, smoke: bool = True
) -> Run:
    stable, candidate, _bad = SCENARIOS[name]
    scenario.install_crd(cluster)
    with _namespace(cluster, "operator", ()) as namespace:  # the operator writes its version ConfigMaps itself
        scenario.apply_golden_set(cluster, namespace)
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": MODEL},
            "spec": {
                "parentRefs": [{"name": "devstack", "namespace": "default"}],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "PathPrefix", "value": "/tensorflow.serving.PredictionService/"}}
                        ],
                        "backendRefs": [{"name": f"{MODEL}-stable", "port": peers.GRPC_PORT}],
                    }
                ],
            },
        }
        cluster.apply(route, namespace=namespace)
        operator = scenario.OperatorProcess(
            cluster,
            namespace,
            log_dir / "operator.log",
            identity=f"bench-peers-{namespace}",
            lease_name=f"bench-peers-{namespace}",
            lease_namespace=namespace,
        )
        release = scenario.Release(cluster, namespace, MODEL)
        operator.start()
        try:
            release.apply(operator_release(namespace, stable, interval, smoke))
            release.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == stable)
            with scenario.traffic(cluster, namespace, rate=rate, duration=3600, http_route=MODEL) as generator:

                def change() -> None:
                    release.set_version(candidate)

                def ended() -> str | None:
                    status = release.status()
                    if status.get("phase") == "Succeeded" and status.get("stableVersion") == candidate:
                        return "promoted"
                    if status.get("phase") != "RolledBack":
                        return None
                    return "rolled back" if _route_weight(cluster, namespace, f"{MODEL}-canary") == 0 else None

                assert operator.process is not None
                measured = _measure(
                    cluster,
                    Target("operator", operator.process.pid, change, ended),
                    namespace,
                    name,
                    rate,
                    generator,
                    timeout,
                )
        finally:
            # Deleted while the operator runs, so its finalizer is removed and the namespace can go.
            cluster.kubectl(
                "delete", "modelrelease", MODEL, "-n", namespace, "--ignore-not-found", "--timeout=60s", check=False
            )
            operator.stop()
    return Run("operator", name, rate, interval=interval, smoke=smoke, **measured)


# --- the table -------------------------------------------------------------------------------------------------------


def load(path: Path) -> list[Run]:
    if not path.exists():
        return []
    return [Run(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    if theirs == 0:
        return "0" if ours == 0 else "inf"
    return f"{ours / theirs:.2f}"


def _exposure_ratio(ours: Cell, theirs: Cell, mine: float | None, peer: float | None) -> str:
    """Ours over the peer's medians for a bad candidate, unless either tool promoted it; the other outcomes said beside.

    A promoted bad candidate's answers stop being counted at the promotion
    that hands it every user, and an undecided one's at the timeout: a ratio
    of those counts would call the tool that kept serving it the better one.
    """
    said = [
        f"{who} {cell.outcomes()}" for who, cell in (("peer", theirs), ("ours", ours)) if not cell.all_rolled_back()
    ]
    if ours.rolled_back() and theirs.rolled_back() and not (ours.promoted() or theirs.promoted()):
        return "; ".join([_ratio(mine, peer), *said])
    return "; ".join(said)


@dataclass
class Cell:
    runs: list[Run]

    @property
    def answers(self) -> float | None:
        return _median([float(r.candidate_answers) for r in self.runs])

    @property
    def seconds(self) -> float | None:
        return _median([r.seconds for r in self.runs if r.seconds is not None])

    def wrong(self, bad: bool) -> str:
        """Promotions of a bad candidate or rollbacks of a good one, and releases still undecided at the timeout."""
        wrong = "promoted" if bad else "rolled back"
        text = f"{self.promoted() if bad else self.rolled_back()} {wrong}"
        undecided = self.undecided()
        return f"{text}, {undecided} undecided" if undecided else text

    def all_rolled_back(self) -> bool:
        return self.rolled_back() == len(self.runs)

    def rolled_back(self) -> int:
        return sum(1 for r in self.runs if r.outcome == "rolled back")

    def promoted(self) -> int:
        return sum(1 for r in self.runs if r.outcome == "promoted")

    def undecided(self) -> int:
        """Runs neither rolled back nor promoted within the timeout."""
        return len(self.runs) - self.rolled_back() - self.promoted()

    def outcomes(self) -> str:
        """What the runs that did not roll back did, e.g. ``promoted 2/5, undecided 1/5``."""
        parts = [
            f"{what} {count}/{len(self.runs)}"
            for what, count in (("promoted", self.promoted()), ("undecided", self.undecided()))
            if count
        ]
        return ", ".join(parts)

    @property
    def rss(self) -> float | None:
        return _median([r.rss_mib for r in self.runs])

    @property
    def cpu(self) -> float | None:
        return _median([r.cpu_seconds for r in self.runs])

    @property
    def writes(self) -> float | None:
        return _median([r.api_writes_per_second for r in self.runs if r.api_writes_per_second is not None])

    @property
    def requests(self) -> float | None:
        return _median([r.api_requests_per_second for r in self.runs if r.api_requests_per_second is not None])

    def requests_text(self) -> str:
        """The median, and over how many runs when not all of them: the first runs were made before it was logged."""
        counted = sum(1 for r in self.runs if r.api_requests_per_second is not None)
        text = _fmt(self.requests, 2)
        return text if counted in (0, len(self.runs)) else f"{text} ({counted} runs)"


def table(runs: list[Run], rates: list[float], interval: str, scenarios: list[str] | None = None) -> str:
    cells: dict[tuple[str, float, str], Cell] = {}
    for run in runs:
        if run.interval == interval:
            tool = NO_SMOKE if run.tool == "operator" and not run.smoke else run.tool
            cells.setdefault((run.scenario, run.rate, tool), Cell([])).runs.append(run)
    lines = [
        "## Head to head",
        "",
        "`make bench-peers` (devstack/bench_peers.py): the same model change released through the operator, Flagger",
        "and Argo Rollouts on one devstack (same model pods, Traefik, Prometheus, traffic generator); stage weights",
        f"{', '.join(map(str, WEIGHTS))} %, then full; one check every {interval} (the peers document 1 minute) over",
        f"{WINDOW} of `model_prediction_outcomes_total`. The peers roll back at {FAILED_CHECKS} checks below accuracy",
        f"{MIN_ACCURACY} (Flagger's MetricTemplate, Argo Rollouts' AnalysisTemplate with the Prometheus provider);",
        f"the operator runs its golden-set smoke stage (min {MIN_ACCURACY}), then its sequential test against the",
        f'stable version (`compareToBaseline.maxDrop: {MAX_DROP}`); "{NO_SMOKE}" leaves the smoke stage out',
        "(measured on v3, which the smoke stage rolls back; v5 passes it, so it has no such rows).",
        "Medians over the runs of a cell; wrong outcomes: promotions of a bad candidate, rollbacks of a good one.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count() or 0} cores, shared with the devstack (control plane,",
        "Traefik, Prometheus, model pods); the runs of 2026-12-03 before 14:00 UTC had nothing else beside them",
        "but, for a few minutes, the unit tests and a type check; from 14:00 the v1-v5 and v2-v5 runs went on two",
        "devstacks side by side, one at 50 req/s and the other at 2 or 10 (load average 1 to 5, mostly 3). Flagger",
        f"{peers.FLAGGER.version}, Argo Rollouts {peers.ARGO_ROLLOUTS.version}, the operator at the commit that added",
        "each run to docs/data/bench-peers-runs.jsonl.",
        "",
        "| scenario | req/s | tool | runs | answers from the candidate | seconds to the end | wrong outcomes "
        "| RSS MiB | CPU s | API writes/s | API requests/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = [
        "",
        "Our/peer ratios of the medians above (below 1: the operator did better). Answers and seconds are compared",
        "for bad candidates only, and not at all where either tool promoted one (a promoted bad candidate goes on",
        "serving every user); runs that did not roll back are counted beside the ratio:",
        "",
        "| scenario | req/s | ours / peer | answers | seconds | RSS | CPU | API writes | API requests |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in scenarios or list(SCENARIOS):
        bad = SCENARIOS[name][2]
        for rate in rates:
            for tool in (*TOOLS, NO_SMOKE):
                cell = cells.get((name, rate, tool))
                if cell is None and tool == NO_SMOKE:
                    continue  # measured where the smoke stage decides (v3); v5 passes it, so it changes nothing there
                if cell is None:
                    lines.append(f"| {name} | {rate:g} | {tool} | 0 | not measured yet | | | | | | |")
                    continue
                lines.append(
                    f"| {name} | {rate:g} | {tool} | {len(cell.runs)} | {_fmt(cell.answers)} | "
                    f"{_fmt(cell.seconds, 1)} | {cell.wrong(bad)} | {_fmt(cell.rss)} | "
                    f"{_fmt(cell.cpu, 1)} | {_fmt(cell.writes, 2)} | {cell.requests_text()} |"
                )
            for us, peer in itertools.product(("operator", NO_SMOKE), TOOLS[1:]):
                ours, theirs = cells.get((name, rate, us)), cells.get((name, rate, peer))
                if ours is None or theirs is None:
                    continue
                answers = _exposure_ratio(ours, theirs, ours.answers, theirs.answers) if bad else "-"
                seconds = _exposure_ratio(ours, theirs, ours.seconds, theirs.seconds) if bad else "-"
                ratios.append(
                    f"| {name} | {rate:g} | {us} / {peer} | {answers} | {seconds} | {_ratio(ours.rss, theirs.rss)} | "
                    f"{_ratio(ours.cpu, theirs.cpu)} | {_ratio(ours.writes, theirs.writes)} | "
                    f"{_ratio(ours.requests, theirs.requests)} |"
                )
    return "\n".join(lines + ratios + NOTES) + "\n"


NOTES = [
    "",
    'How to read it. "Seconds to the end" runs from the version change to the rollback in effect (the tool says',
    "it failed and its router gives the candidate weight 0) or to the promotion; it includes starting the",
    "candidate's pod (TensorFlow import, 15 to 30 s at this load). A release neither rolled back nor promoted",
    'within the timeout (`--timeout`) is "undecided" and counts no seconds; its answers from the candidate',
    "are those up to the timeout. CPU s is the controller's CPU over that span (so a longer span costs more",
    "CPU), RSS its resident memory at the end (the operator is a Python process). API requests/s counts",
    "every request the API server answered to the controller's user agent in the run's namespace or",
    "cluster-wide (gets, lists, watches when they start, writes, its own resources and routes included);",
    "the runs before 2026-12-03 14:30 UTC were made when devstack logged only what API writes/s counts, so",
    "that column has more runs: Lease reads and writes, and writes to Deployments, Services, ConfigMaps",
    "and Events, in the run's namespace. Two operator runs just after it have no request count: the bench's",
    "own status polls then had the operator's user agent.",
    "",
    "Builds (`/usr/bin/time -v`, `-trimpath -ldflags '-s -w'`, `nice 10`, `-p 2`, at load about 10): Flagger",
    "315 s wall, 164 CPU-s, peak RSS 761 MiB, 54 MiB binary; Argo Rollouts 920 s wall, 500 CPU-s, peak RSS",
    "1395 MiB, 90 MiB binary (Go 1.27.3 fetched as its toolchain). Argo Rollouts runs with `--namespace=<ns>`:",
    "`--namespaced` alone watches the kubeconfig context's namespace.",
]

RUNNERS: dict[str, Callable[..., Run]] = {"operator": run_operator, "flagger": run_flagger, "argo-rollouts": run_argo}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_peers", description=__doc__)
    parser.add_argument("--rates", default="10", help="comma-separated requests per second (default 10)")
    parser.add_argument("--scenarios", default="v1-v3", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    parser.add_argument("--runs", type=int, default=1, help="runs per cell (default 1)")
    parser.add_argument("--interval", default="10s", help="analysis interval of every tool (default 10s)")
    parser.add_argument("--no-smoke", action="store_true", help="the operator without its smoke stage")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the end of a release")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"runs are appended here (default {RESULTS})")
    parser.add_argument("--table-only", action="store_true", help="run nothing; print the table of --results")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench-peers"), help="controller logs go here")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    tools = [tool for tool in args.tools.split(",") if tool]
    names = [name for name in args.scenarios.split(",") if name]
    rates = [float(rate) for rate in args.rates.split(",") if rate]
    if not args.table_only:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        os.environ[audit.EVERY_REQUEST_ENV] = "1"  # read by the devstack this starts (a running one keeps its policy)
        with session_cluster() as cluster:
            wanted = {"flagger": peers.FLAGGER, "argo-rollouts": peers.ARGO_ROLLOUTS}
            files = peers.crd_files([wanted[tool] for tool in tools if tool in wanted])
            for path in files:
                cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
            crds = [f"crd/{name}" for name in peers.crd_names(files)]
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
            for _ in range(args.runs):
                for name in names:
                    for rate in rates:
                        for tool in tools:
                            say(f"{tool}: {name} at {rate:g} req/s")
                            extra = {"smoke": not args.no_smoke} if tool == "operator" else {}
                            run = RUNNERS[tool](
                                cluster, name, rate, args.interval, args.logs / tool, args.timeout, **extra
                            )
                            run.started = time.time()
                            say(f"{tool}: {run}")
                            with args.results.open("a") as out:
                                out.write(json.dumps(asdict(run)) + "\n")
    all_rates = sorted({*RATES, *rates, *(r.rate for r in load(args.results))})
    markdown = table(load(args.results), all_rates, args.interval)
    print(markdown)
    if not args.no_write:
        write_section(markdown)
        say(f"wrote the section into {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
