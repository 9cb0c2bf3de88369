"""Record a real devstack rollout as the metric series ``modelrelease simulate`` replays.

``python -m devstack.recording [--out DIR]`` runs the rollout of
``DIR/release.yaml`` (a stable version, then the candidate it names) on
devstack with the operator as a process and labelled traffic, and samples
Prometheus every second for each of the release's metrics, for the
candidate and the stable version, as cumulative counters.  It writes:

- ``DIR/metrics.csv``: the series (columns documented in
  ``modelrelease.cli.simulate``), time 0 being the moment the candidate was applied;
- ``DIR/recorded.json``: what the real operator decided (the candidate's
  ``status.history`` outcomes and stages, in order), the stable version, and
  how long the candidate took to be ready, so a test can check that
  ``simulate`` on the series decides the same, in the same order.

Why cumulative counters: the judges ask for increases over windows that
vary (a check's interval, or since the last counted check); a counter series
answers any window, as Prometheus does.  Each metric's counted queries are
its own PromQL with ``increase(...[{{interval}}])`` unwrapped to the raw
counter; a metric that is one number (latency) is recorded as its value
over the analysis interval.

Re-record after a judge change (the series stays valid, the decisions may
not): ``make setup`` first, then this module; about two minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from devstack import scenario
from devstack.state import StateDir, default_state_dir
from devstack.testing import fresh_namespace, session_cluster
from modelrelease.analysis import TemplateValues, plan_for, render
from modelrelease.api import parse_release
from modelrelease.api.spec import MetricSpec
from modelrelease.cli.simulate import CSV_COLUMNS
from modelrelease.cli.view import is_finished
from modelrelease.engine.clock import parse_time

DEFAULT_DIR = scenario.REPO / "examples" / "digits" / "recorded"
_INCREASE = re.compile(r"increase\((?P<series>[^\[\]]*)\[\{\{interval\}\}\]\)")
TRAFFIC_RATE = 40.0
SETTLE_SECONDS = 3.0
"""Samples kept after the rollout ends, so the last checks' windows are covered."""


def counter_query(expression: str) -> str:
    """``sum(increase(x{..}[{{interval}}]))`` -> ``sum(x{..})``: the raw counter the increase was taken of."""
    return _INCREASE.sub(lambda m: m.group("series"), expression)


def sample_queries(metric: MetricSpec, values: TemplateValues) -> dict[str, str]:
    """PromQL per CSV column (numerator, denominator, value) for one version."""
    plan = plan_for(metric)
    queries: dict[str, str] = {}
    if plan.is_ratio:
        assert plan.numerator is not None and plan.denominator is not None
        queries["numerator"] = counter_query(plan.numerator)
        queries["denominator"] = counter_query(plan.samples or plan.denominator)
    else:
        assert plan.value is not None
        queries["value"] = plan.value
        if plan.samples is not None:
            queries["denominator"] = counter_query(plan.samples)
    return {column: render(text, values) for column, text in queries.items()}


def _value(url: str, promql: str, at: float) -> float | None:
    """The query's single number evaluated at ``at`` (unix time), or None without data.

    Every query of one sample is evaluated at the same instant, so a ratio's
    numerator and denominator come from the same scrape even though they are
    two queries.
    """
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            response = client.get(f"{url.rstrip('/')}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"})
        result = response.json()["data"]["result"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return float(result[0]["value"][1]) if len(result) == 1 else None


def record(out: Path, state: StateDir, stable: int) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((out / "release.yaml").read_text())
    release = parse_release(manifest)
    spec = release.spec
    candidate = spec.model.version
    rows: list[dict[str, Any]] = []
    with session_cluster(state) as cluster:
        assert cluster.prometheus_url, "devstack runs without Prometheus"
        scenario.install_crd(cluster)
        with fresh_namespace(cluster, "recording") as namespace:
            scenario.apply_golden_set(cluster, namespace)
            operator = scenario.OperatorProcess(
                cluster=cluster,
                namespaces=namespace,
                log_path=state.root / "recording" / f"operator-{namespace}.log",
                identity=f"recording-{os.getpid()}",
                lease_name=f"modelrelease-{namespace}",
            )
            operator.start()
            try:
                target = scenario.Release(cluster, namespace, str(manifest["metadata"]["name"]))
                target.apply(scenario.load_manifest(out / "release.yaml", stable))
                target.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == stable)
                with scenario.traffic(cluster, namespace, rate=TRAFFIC_RATE, duration=3600.0):
                    applied_at = time.time()
                    target.apply(scenario.load_manifest(out / "release.yaml", candidate))
                    _sample_until_done(cluster.prometheus_url, target, spec, namespace, applied_at, rows)
                status = target.status()
            finally:
                operator.stop()
                operator.delete_lease()
    history = [h for h in status.get("history", []) if h["version"] == candidate]
    decisions = [[h["outcome"], h.get("stage")] for h in history]
    # The candidate's readiness is not in history; its smoke test passes on the pass that sees it ready.
    ready_at = next((e.get("at") for e in history if e["outcome"] == "SmokePassed"), None)
    ready_after = round(parse_time(ready_at).timestamp() - applied_at, 1) if ready_at else 5.0
    with (out / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    recorded = {
        "stableVersion": stable,
        "candidateVersion": candidate,
        "readyAfterSeconds": ready_after,
        "phase": status.get("phase"),
        "decisions": decisions,
    }
    (out / "recorded.json").write_text(json.dumps(recorded, indent=2) + "\n")
    return recorded


def _sample_until_done(
    url: str, target: scenario.Release, spec: Any, namespace: str, applied_at: float, rows: list[dict[str, Any]]
) -> None:
    """One sample of every metric and version per second (all evaluated at one instant), until the rollout ends."""
    candidate = spec.model.version
    ended_at: float | None = None
    with ThreadPoolExecutor(max_workers=8) as pool:
        while ended_at is None or time.monotonic() - ended_at < SETTLE_SECONDS:
            tick = time.monotonic()
            at = time.time() - 0.5  # just behind now, so the instant's scrape has landed
            release = target.get()
            status = release.get("status") or {}
            stable = status.get("stableVersion")
            jobs = []
            for metric in spec.analysis.metrics:
                for role, version in (("candidate", candidate), ("stable", stable)):
                    if version is None or (role == "stable" and version == candidate):
                        continue
                    values = TemplateValues(
                        spec.model.name, int(version), namespace, target.name, spec.analysis.interval
                    )
                    queries = sample_queries(metric, values)
                    futures = {column: pool.submit(_value, url, q, at) for column, q in queries.items()}
                    jobs.append((role, metric.name, futures))
            seconds = round(at - applied_at, 2)
            for role, name, futures in jobs:
                sample = {column: future.result() for column, future in futures.items()}
                rows.append({"seconds": seconds, "role": role, "metric": name, **_csv(sample)})
            if ended_at is None and is_finished(release):  # for the candidate's spec, not the stable one's
                ended_at = time.monotonic()
            if seconds > 900:
                raise TimeoutError(f"the rollout did not end in 15 minutes: {status.get('message')}")
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))  # sampling cadence, not synchronisation


def _csv(sample: dict[str, float | None]) -> dict[str, str]:
    return {c: "" if sample.get(c) is None else f"{sample[c]:g}" for c in ("numerator", "denominator", "value")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.recording", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="directory holding release.yaml")
    parser.add_argument("--stable", type=int, default=2, help="the stable version the candidate replaces")
    args = parser.parse_args(argv)
    recorded = record(args.out, StateDir(default_state_dir()), args.stable)
    print(json.dumps(recorded, indent=2))
    return 0 if recorded["phase"] in ("Succeeded", "RolledBack") else 1


if __name__ == "__main__":
    sys.exit(main())
