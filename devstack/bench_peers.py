"""`make bench-peers`: the same bad model released through Flagger and Argo Rollouts on one devstack.

Why: issue 17 asks that our claims against the peers be measured side by
side.  This is the first slice: ONE scenario (v1 stable, then v3, accuracy
0.445 against v1's 0.955) at one rate, through each peer, on the same
devstack, model pods, Prometheus and traffic generator.  Per tool and run
it measures:

- requests answered by the bad version (v3) between the version change and
  the end of the rollback (the traffic generator's own count of answers by
  version, which is what users saw);
- seconds from the version change to the rollback being in effect: the
  tool says it failed (Flagger's Canary ``Failed``; Argo Rollouts' Rollout
  aborted) and its router gives the candidate weight 0;
- the controller's RSS and CPU seconds over the run (from /proc).

Both tools get the same stage weights (10, 20, 30, 40, 50 %, then full),
the same analysis interval and the same accuracy query over
``model_prediction_outcomes_total`` (docs/metrics.md), through Flagger's
MetricTemplate and Argo Rollouts' AnalysisTemplate.  The interval is
``--interval`` (default 10 s), shorter than both tools' documented default
of one minute, so that a run takes about a minute; the table says so.

Flagger shifts the weights of an HTTPRoute that devstack's Traefik serves;
Argo Rollouts those of a TraefikService that a second Traefik (the CRD
provider) serves (devstack.peers).  Each run has its namespace and its
controller processes of its own.  Not yet here (issue 17's next slices):
the operator's own row and the ratios, the other scenarios and rates, five
runs per cell, API requests per second.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import peers, scenario
from devstack.benchdoc import DOCS, write_section
from devstack.testing import Cluster, session_cluster, wait_for

MODEL = "digits"
WEIGHTS = (10, 20, 30, 40, 50)
MIN_ACCURACY = 0.9
"""Both tools fail a check below this accuracy (v1 measures 0.955, v3 0.445)."""
FAILED_CHECKS = 2
"""Failed checks that roll back: Flagger's ``threshold``; Argo Rollouts aborts at ``failureLimit`` + 1."""
WINDOW = "30s"


def accuracy_query(namespace: str, version: int, window: str) -> str:
    """Accuracy of ``version`` over ``window``, from the traffic generator of ``namespace`` (job ``traffic-<ns>``)."""
    selector = f'model="{MODEL}",version="{version}",job="traffic-{namespace}"'
    return (
        f'sum(increase(model_prediction_outcomes_total{{{selector},outcome="correct"}}[{window}])) / '
        f"sum(increase(model_prediction_outcomes_total{{{selector}}}[{window}]))"
    )


@dataclass
class Run:
    tool: str
    rate: float
    bad_answers: int
    rollback_seconds: float | None
    outcome: str
    rss_mib: float
    cpu_seconds: float


def say(text: str) -> None:
    print(f"bench-peers: {text}", flush=True)


def _get(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else {}


@contextmanager
def _namespace(cluster: Cluster, tool: str) -> Iterator[str]:
    name = f"bench-peers-{tool}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    try:
        wait_for(
            lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            30,
            message=f"default ServiceAccount in {name}",
        )
        cluster.apply([peers.version_config_map(MODEL, v) for v in (1, 3)], namespace=name)
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


def _measure(
    tool: str,
    rate: float,
    generator: Any,
    controller: peers.PeerProcess,
    change: Callable[[], None],
    rolled_back: Callable[[], str | None],
    timeout: float,
) -> Run:
    """Change the version, wait for the rollback, and count what users got from the bad version meanwhile."""
    cpu_before = controller.cpu_seconds()
    before = generator.stats
    started = time.monotonic()
    change()
    outcome: str | None = None
    try:
        outcome = wait_for(rolled_back, timeout, interval=0.25, message=f"{tool} rollback")
        seconds: float | None = time.monotonic() - started
    except TimeoutError:
        seconds, outcome = None, f"no rollback within {timeout:.0f} s"
    # Answers in flight when the weight went to 0 still count: wait for another second's worth of answers.
    at_end = generator.stats.answered
    wait_for(lambda: generator.stats.answered - at_end >= rate, 10, message="answers after the rollback")
    after = generator.stats
    bad = after.versions.get("3", 0) - before.versions.get("3", 0)
    return Run(tool, rate, bad, seconds, outcome or "", controller.rss_mib(), controller.cpu_seconds() - cpu_before)


def run_flagger(cluster: Cluster, rate: float, interval: str, log_dir: Path, timeout: float) -> Run:
    assert cluster.prometheus_url, "devstack runs no Prometheus"
    with _namespace(cluster, "flagger") as namespace:
        flagger = peers.flagger_process(cluster.kubeconfig, namespace, cluster.prometheus_url, log_dir)
        template = {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "accuracy"},
            "spec": {
                "provider": {"type": "prometheus", "address": cluster.prometheus_url},
                "query": accuracy_query(namespace, 3, "{{ interval }}"),
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
            cluster.apply([template, *peers.flagger_objects(MODEL, MODEL, 1, analysis)], namespace=namespace)

            def phase() -> str:
                return str(_get(cluster, "canary", MODEL, namespace).get("status", {}).get("phase", ""))

            wait_for(lambda: phase() == "Initialized", 120, interval=0.5, message="Canary Initialized")
            with scenario.traffic(cluster, namespace, rate=rate, duration=3600, http_route=MODEL) as generator:
                patch = json.dumps(peers.set_version_patch(MODEL, 3))

                def change() -> None:
                    cluster.kubectl("patch", "deployment", MODEL, "-n", namespace, "--type=strategic", "-p", patch)

                def rolled_back() -> str | None:
                    current = phase()
                    if current == "Succeeded":
                        return "PROMOTED the bad version"
                    route = _get(cluster, "httproute", MODEL, namespace)
                    refs = (route.get("spec", {}).get("rules") or [{}])[0].get("backendRefs") or []
                    canary = sum(int(r.get("weight", 0)) for r in refs if r["name"] == f"{MODEL}-canary")
                    return "rolled back" if current == "Failed" and canary == 0 else None

                return _measure("flagger", rate, generator, flagger, change, rolled_back, timeout)


def run_argo(cluster: Cluster, rate: float, interval: str, log_dir: Path, timeout: float) -> Run:
    from devstack.traffic import TrafficConfig, running
    from devstack.traffic.kube import resolver_for_service

    assert cluster.prometheus_url, "devstack runs no Prometheus"
    with _namespace(cluster, "argo") as namespace:
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
                                "query": accuracy_query(namespace, 3, WINDOW),
                            }
                        },
                    }
                ]
            },
        }
        steps: list[dict[str, Any]] = []
        for weight in WEIGHTS:
            steps += [{"setWeight": weight}, {"pause": {"duration": interval}}]
        objects = peers.argo_objects(MODEL, MODEL, 1, steps)
        objects[-1]["spec"]["strategy"]["canary"]["analysis"] = {"templates": [{"templateName": "accuracy"}]}
        with _running(traefik, argo):
            cluster.apply([template, *objects], namespace=namespace)

            def rollout() -> dict[str, Any]:
                return _get(cluster, "rollout", MODEL, namespace)

            wait_for(
                lambda: rollout().get("status", {}).get("phase") == "Healthy", 120, interval=0.5, message="Healthy"
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
                patch = json.dumps(peers.set_version_patch(MODEL, 3))

                def change() -> None:
                    cluster.kubectl("patch", "rollout", MODEL, "-n", namespace, "--type=merge", "-p", patch)

                first_stable = rollout()["status"]["stableRS"]

                def rolled_back() -> str | None:
                    status = rollout().get("status", {})
                    if status.get("stableRS") != first_stable:
                        return "PROMOTED the bad version"
                    service = _get(cluster, "traefikservice", f"{MODEL}-weighted", namespace)
                    weights = {s["name"]: int(s["weight"]) for s in service["spec"]["weighted"]["services"]}
                    aborted = bool(status.get("abort"))
                    return "rolled back" if aborted and weights.get(f"{MODEL}-canary") == 0 else None

                return _measure("argo-rollouts", rate, generator, argo, change, rolled_back, timeout)


def table(runs: list[Run], interval: str) -> str:
    lines = [
        "## Head to head",
        "",
        "`make bench-peers` (devstack/bench_peers.py): v1 stable, then v3 (accuracy 0.445 against 0.955), through",
        f"each peer on one devstack; stage weights {', '.join(map(str, WEIGHTS))} %, one accuracy check every",
        f"{interval} (both tools document 1 minute) over {WINDOW}, rollback at {FAILED_CHECKS} failed checks below"
        f" {MIN_ACCURACY}. One run per cell so far.",
        "",
        f"Machine: {platform.machine()}, {_cores()} cores; Flagger {peers.FLAGGER.version}, "
        f"Argo Rollouts {peers.ARGO_ROLLOUTS.version}.",
        "",
        "| tool | req/s | answers from v3 | seconds to rollback | outcome | RSS MiB | CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        seconds = f"{run.rollback_seconds:.1f}" if run.rollback_seconds is not None else "-"
        lines.append(
            f"| {run.tool} | {run.rate:g} | {run.bad_answers} | {seconds} | {run.outcome} | "
            f"{run.rss_mib:.0f} | {run.cpu_seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_peers", description=__doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10)")
    parser.add_argument("--interval", default="10s", help="analysis interval of both tools (default 10s)")
    parser.add_argument("--tools", default="flagger,argo-rollouts", help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a rollback")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench-peers"), help="controller logs go here")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    runners = {"flagger": run_flagger, "argo-rollouts": run_argo}
    tools = [tool for tool in args.tools.split(",") if tool]
    with session_cluster() as cluster:
        wanted = {"flagger": peers.FLAGGER, "argo-rollouts": peers.ARGO_ROLLOUTS}
        files = peers.crd_files([wanted[tool] for tool in tools])
        for path in files:
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        names = [f"crd/{name}" for name in peers.crd_names(files)]
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
        runs = []
        for tool in tools:
            say(f"{tool}: v1 then v3 at {args.rate:g} req/s")
            run = runners[tool](cluster, args.rate, args.interval, args.logs / tool, args.timeout)
            say(f"{tool}: {run}")
            runs.append(run)
    markdown = table(runs, args.interval)
    print(markdown)
    if not args.no_write:
        write_section(markdown)
        say(f"wrote the section into {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
