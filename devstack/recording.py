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
from pathlib import Path
from typing import Any

import yaml

from devstack import prometheus, scenario
from devstack.state import StateDir, default_state_dir
from devstack.testing import fresh_namespace, session_cluster
from modelrelease.analysis import TemplateValues, plan_for, render
from modelrelease.api import parse_release
from modelrelease.api.spec import MetricSpec
from modelrelease.cli.simulate import CSV_COLUMNS

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


def _value(url: str, promql: str) -> float | None:
    try:
        return prometheus.query_value(url, promql)
    except (RuntimeError, ValueError, OSError):
        return None


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
                    started = time.monotonic()
                    target.apply(scenario.load_manifest(out / "release.yaml", candidate))
                    ready_after = _sample_until_done(cluster.prometheus_url, target, spec, namespace, started, rows)
                status = target.status()
            finally:
                operator.stop()
                operator.delete_lease()
    decisions = [[h["outcome"], h.get("stage")] for h in status.get("history", []) if h["version"] == candidate]
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
    url: str, target: scenario.Release, spec: Any, namespace: str, started: float, rows: list[dict[str, Any]]
) -> float | None:
    candidate = spec.model.version
    interval = spec.analysis.interval
    ready_after: float | None = None
    ended_at: float | None = None
    name = target.name
    while ended_at is None or time.monotonic() - ended_at < SETTLE_SECONDS:
        tick = time.monotonic()
        seconds = round(tick - started, 1)
        status = target.status()
        if ready_after is None and status.get("candidateVersion") == candidate and status.get("candidateReadyAt"):
            ready_after = seconds
        stable = status.get("stableVersion")
        roles = {"candidate": candidate, "stable": stable if stable != candidate else None}
        for metric in spec.analysis.metrics:
            for role, version in roles.items():
                if version is None:
                    continue
                values = TemplateValues(spec.model.name, int(version), namespace, name, interval)
                sample = {column: _value(url, q) for column, q in sample_queries(metric, values).items()}
                rows.append({"seconds": seconds, "role": role, "metric": metric.name, **_csv(sample)})
        if ended_at is None and status.get("phase") in scenario.TERMINAL_PHASES and status.get("observedGeneration"):
            ended_at = time.monotonic()
        if seconds > 900:
            raise TimeoutError(f"the rollout did not end in 15 minutes: {status.get('message')}")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))  # sampling cadence, not synchronisation
    return ready_after


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
