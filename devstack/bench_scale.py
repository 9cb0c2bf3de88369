"""`make bench-scale`: one operator replica with 100, 300 and 1,000 releases on kwok, half of them rolling out.

What it measures, per size (each size in its own namespace, with a fresh
operator process so RSS and CPU are that size's):

- reconcile latency p50/p99, from the operator's own histogram
  (``modelrelease_reconcile_duration_seconds``) over the rollout window;
- version change to candidate Deployment p50/p99: from the API server's
  audit log, the moment the release's ``spec.model.version`` patch was
  received to the moment the ``<name>-v2`` Deployment's first successful
  apply was answered (one clock: the API server's);
- operator RSS (at the end of the rollout window) and CPU (share of one core
  over the window, from /proc);
- API requests per second by verb, from the API server's
  ``apiserver_request_total`` over the rollout window (the bench has the
  devstack to itself), and the operator's own count by method;
- API writes per minute while every release is idle (audit log, the size's
  namespace, and the operator's own count);
- Prometheus queries per second (the operator's own
  ``modelrelease_prometheus_queries_total``: counted where they are sent,
  so also when the devstack runs no Prometheus);
- how each figure grows from the smallest size to the largest.

The releases run on kwok's fake nodes; devstack.fake_serving answers gRPC
at their pod addresses and exports per-version counters to Prometheus.
Each release: 1 replica, stages canary 50% (``CANARY_SECONDS``) then full,
one accuracy metric every ``ANALYSIS_INTERVAL``.

Use a private devstack (``MODELRELEASE_DEVSTACK_DIR=/tmp/ds-bench``): the
bench reads the API server's counters, which other users of a devstack
would change.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import audit, scale, scenario
from devstack.benchdoc import DOCS, write_section
from devstack.testing import Cluster, session_cluster

PREFIX = "bench-scale"
CANARY_SECONDS = 60
ANALYSIS_INTERVAL = "10s"
ROLLOUT_WINDOW = 60.0
"""Seconds measured while half of the releases roll out."""
IDLE_WINDOW = 60.0
"""Seconds measured while every release is idle."""
STAGES = [{"name": "canary", "weight": 50, "duration": f"{CANARY_SECONDS}s"}, {"name": "full", "weight": 100}]


@dataclass
class SizeResult:
    releases: int
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile`` over cumulative (upper bound, count) pairs, +Inf last."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = bound, count
    return lower


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def reconcile_buckets(metrics_text: str) -> dict[float, float]:
    found: dict[float, float] = {}
    for labels, value in scale.samples(metrics_text, "modelrelease_reconcile_duration_seconds_bucket"):
        bound = float(labels["le"])
        found[bound] = found.get(bound, 0.0) + value
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def operator_queries(metrics_text: str) -> float:
    return sum(value for _, value in scale.samples(metrics_text, "modelrelease_prometheus_queries_total"))


def change_to_candidate(cluster: Cluster, offset: int, namespace: str, names: list[str]) -> list[float]:
    """Seconds from each release's version patch to its v2 Deployment's first successful apply (audit log)."""
    entries, _ = audit.read(audit.log_path(cluster.state_dir / "logs"), offset)
    patched: dict[str, float] = {}
    created: dict[str, float] = {}
    wanted = set(names)
    for entry in entries:
        if entry.namespace != namespace or not entry.succeeded:
            continue
        if entry.resource == "modelreleases" and entry.verb == "patch" and entry.name in wanted:
            patched.setdefault(entry.name, entry.received)
        elif entry.resource == "deployments" and entry.verb in ("patch", "create") and entry.name.endswith("-v2"):
            created.setdefault(entry.name.removesuffix("-v2"), entry.answered)
    return [created[name] - patched[name] for name in names if name in patched and name in created]


def run_size(cluster: Cluster, count: int, log_dir: Path, say: Callable[[str], None]) -> SizeResult:
    result = SizeResult(count)
    namespace = f"{PREFIX}-{count}"
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=600)
    cluster.kubectl("create", "namespace", namespace)
    operator = scenario.OperatorProcess(
        cluster=cluster,
        namespaces=f"{PREFIX}-*",
        log_path=log_dir / f"operator-{count}.log",
        identity=f"bench-scale-{count}",
        lease_name=f"bench-scale-{count}",
    )
    operator.start()
    names = [f"r{index:04d}" for index in range(count)]
    rolled = names[: count // 2]
    analysis = scale.accuracy_analysis(ANALYSIS_INTERVAL)
    try:
        started = time.monotonic()
        scale.apply_all(cluster, [scale.scale_release(n, namespace, 1, STAGES, analysis=analysis) for n in names])
        scale.wait_phases(cluster, namespace, {n: ("Succeeded", 1) for n in names}, timeout=60 * 30, settled=True)
        scale.wait_deployments_settled(cluster, namespace, timeout=600)
        result.figures["initial deploy, all Succeeded (s)"] = time.monotonic() - started
        say(f"{count}: all {count} releases Succeeded at v1 in {time.monotonic() - started:.0f} s")

        offset = scale.audit_offset(cluster)
        before_ops = scale.operator_requests(operator.metrics())
        before_api = scale.apiserver_requests(cluster)
        time.sleep(IDLE_WINDOW)  # the idle measurement window
        idle = scale.audit_writes(cluster, offset, [namespace])
        idle_ops = scale.delta(scale.operator_requests(operator.metrics()), before_ops)
        idle_api = scale.delta(scale.apiserver_requests(cluster), before_api)
        result.figures["idle: API writes/min (audit, this namespace)"] = idle.count * 60 / IDLE_WINDOW
        result.figures["idle: operator requests/min"] = (
            sum(v for k, v in idle_ops.items() if k != "WATCH") * 60 / IDLE_WINDOW
        )
        result.figures["idle: API server writes/min (all clients)"] = (
            sum(v for k, v in idle_api.items() if k.upper() in scale.WRITE_VERBS) * 60 / IDLE_WINDOW
        )
        say(f"{count}: idle {IDLE_WINDOW:.0f} s: {idle.count} writes {idle.by_resource}, operator {idle_ops}")

        assert operator.process is not None
        pid = operator.process.pid
        offset = scale.audit_offset(cluster)
        text = operator.metrics()
        before_buckets = reconcile_buckets(text)
        before_ops = scale.operator_requests(text)
        before_api = scale.apiserver_requests(cluster)
        before_queries = operator_queries(text)
        before_cpu = cpu_seconds(pid)
        window_start = time.monotonic()
        scale.set_versions(cluster, namespace, rolled, 2)
        remaining = ROLLOUT_WINDOW - (time.monotonic() - window_start)
        if remaining > 0:
            time.sleep(remaining)  # the rollout measurement window
        elapsed = time.monotonic() - window_start
        text = operator.metrics()
        after_buckets = reconcile_buckets(text)
        ops = scale.delta(scale.operator_requests(text), before_ops)
        api = scale.delta(scale.apiserver_requests(cluster), before_api)
        queries = operator_queries(text) - before_queries
        cpu = cpu_seconds(pid) - before_cpu
        rss = operator.rss_mb()
        buckets = [(bound, after_buckets.get(bound, 0.0) - before_buckets.get(bound, 0.0)) for bound in after_buckets]
        passes = max((count for bound, count in buckets if math.isinf(bound)), default=0.0)
        latencies = change_to_candidate(cluster, offset, namespace, rolled)
        figures = result.figures
        figures["reconcile p50 (s)"] = histogram_quantile(0.5, buckets)
        figures["reconcile p99 (s)"] = histogram_quantile(0.99, buckets)
        figures["passes/s"] = passes / elapsed
        figures["version change → candidate Deployment p50 (s)"] = percentile(latencies, 0.5)
        figures["version change → candidate Deployment p99 (s)"] = percentile(latencies, 0.99)
        figures["candidates created within the window"] = float(len(latencies))
        figures["operator RSS (MB)"] = rss
        figures["operator CPU (% of a core)"] = 100 * cpu / elapsed
        for verb in ("GET", "LIST", "WATCH", "PATCH", "POST", "PUT", "DELETE", "APPLY"):
            if api.get(verb):
                figures[f"API server requests/s: {verb}"] = api[verb] / elapsed
        figures["API server requests/s: all"] = sum(api.values()) / elapsed
        figures["operator requests/s (own count, watches aside)"] = (
            sum(v for k, v in ops.items() if k != "WATCH") / elapsed
        )
        figures["operator requests per pass"] = sum(v for k, v in ops.items() if k not in ("WATCH", "LIST")) / max(
            1.0, passes
        )
        figures["Prometheus queries/s"] = queries / elapsed
        say(f"{count}: rollout window {elapsed:.0f} s: " + json.dumps({k: round(v, 3) for k, v in figures.items()}))
    finally:
        # The releases go while their operator still runs, and the namespace is gone before the next size starts:
        # the next operator watches every bench namespace, and a namespace still terminating would have it
        # resume, and try to restore, the objects of this size (measured: 2,450 requests/min in 300's idle window).
        cluster.kubectl("delete", "modelreleases", "--all", "-n", namespace, "--wait=true", timeout=900, check=False)
        operator.stop()
        operator.delete_lease()
        cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--ignore-not-found", timeout=900, check=False)
    return result


def markdown(results: list[SizeResult], seconds: float) -> str:
    sizes = [r.releases for r in results]
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.figures if k not in keys]
    header = "| figure | " + " | ".join(f"{n} releases" for n in sizes) + f" | growth {sizes[0]}→{sizes[-1]} |"
    lines = [
        "## Scale",
        "",
        f"`make bench-scale` (devstack.bench_scale): one operator replica, N releases on kwok fake nodes "
        f"(1 replica each), half of them changing `spec.model.version` at once; stages canary 50% "
        f"{CANARY_SECONDS} s then full, one accuracy metric every {ANALYSIS_INTERVAL} against "
        "devstack.fake_serving's counters. Rollout figures over the first "
        f"{ROLLOUT_WINDOW:.0f} s after the version change; idle figures over {IDLE_WINDOW:.0f} s with every "
        f"release Succeeded. {seconds / 60:.0f} min on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (shared with the control plane, kwok and Prometheus; load average "
        f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}.",
        "",
        header,
        "|" + "---|" * (len(sizes) + 2),
    ]
    for key in keys:
        values = [r.figures.get(key, math.nan) for r in results]
        first, last = values[0], values[-1]
        growth = f"x{last / first:.1f}" if first and not math.isnan(first) and not math.isnan(last) else "-"
        lines.append(f"| {key} | " + " | ".join(_fmt(v) for v in values) + f" | {growth} |")
    notes = [note for r in results for note in r.notes]
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000", help="comma-separated release counts")
    parser.add_argument("--kwok-nodes", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    started = time.monotonic()
    results: list[SizeResult] = []
    with session_cluster() as cluster:
        scenario.install_crd(cluster)
        cluster.kwok_nodes(args.kwok_nodes)
        log_dir = Path(cluster.state_dir) / "logs" / "bench-scale"
        log_dir.mkdir(parents=True, exist_ok=True)
        with scale.FakeServing(cluster, PREFIX, log_dir / "fake-serving.log", rate=20.0) as fake:
            for count in sizes:
                try:
                    results.append(run_size(cluster, count, log_dir, lambda line: print(line, flush=True)))
                except Exception as error:  # one size failing still leaves the others' figures
                    failed = SizeResult(count)
                    failed.notes.append(f"{count} releases: did not complete: {type(error).__name__}: {error}")
                    results.append(failed)
                    print(failed.notes[-1], flush=True)
                print(f"fake serving: {fake.status()}", flush=True)
    text = markdown(results, time.monotonic() - started)
    print()
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"bench-scale: wrote the Scale section of {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
