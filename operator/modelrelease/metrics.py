"""The operator's own metrics and health endpoint (``/metrics``, ``/healthz`` on ``--metrics-port``).

Why a private registry: the process imports libraries that may register
collectors of their own, and the operator's dashboard should show exactly
the series documented here (docs/metrics.md).  Why aiohttp: kopf already
runs on it, so the endpoint lives in the operator's event loop without
another thread.

Why the per-release gauges (``modelrelease_release_*``, modelled on
Flagger's ``flagger_canary_*``) come from a collector over the last status
each pass wrote, not from gauges set here and there: a release's series
then always agree with one status (phase, stage, weights and verdicts of
the same pass), a deleted release's series vanish with it, time in stage
is computed when scraped, and only the replica that leads reports them (a
standby's copy would be stale and double every sum).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from modelrelease.api.status import ModelReleaseStatus

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

RECONCILE_SECONDS = Histogram(
    "modelrelease_reconcile_duration_seconds",
    "Time of one reconcile pass of one release (observe, decide, measure, apply, status).",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RELEASES = Gauge(
    "modelrelease_releases", "ModelReleases by phase, as last seen by this operator.", ["phase"], registry=REGISTRY
)
STAGE_TRANSITIONS = Counter(
    "modelrelease_stage_transitions_total", "Stages entered by candidates.", ["stage"], registry=REGISTRY
)
PROMOTIONS = Counter(
    "modelrelease_promotions_total",
    "Versions made stable, by release and reason (InitialVersion, Completed, PromoteRequested...).",
    ["namespace", "release", "reason"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "modelrelease_rollbacks_total",
    "Candidates rolled back (or aborted by request), by release and reason (AnalysisFailed, SmokeFailed...).",
    ["namespace", "release", "reason"],
    registry=REGISTRY,
)
ANALYSIS_RESULTS = Counter(
    "modelrelease_analysis_results_total",
    "Metric verdicts of analysis checks.",
    ["metric", "verdict"],
    registry=REGISTRY,
)
PROMETHEUS_ERRORS = Counter(
    "modelrelease_prometheus_query_errors_total",
    "Analysis metrics left without a value because Prometheus could not be queried or refused the query.",
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "modelrelease_api_requests_total",
    "Requests this operator sent to the API server, by HTTP method (LIST and WATCH: the object cache's).",
    ["method"],
    registry=REGISTRY,
)
CACHED_OBJECTS = Gauge(
    "modelrelease_cached_objects",
    "Objects of each kind held by the operator's watch cache (kube.cache).",
    ["kind"],
    registry=REGISTRY,
)
PASSES_WAITING = Gauge(
    "modelrelease_passes_waiting",
    "Releases due for a pass that wait for a free worker (scheduler's bounded pool).",
    registry=REGISTRY,
)
PROMETHEUS_QUERIES = Counter(
    "modelrelease_prometheus_queries_total",
    "Instant queries sent to Prometheus by analysis checks (answered or not).",
    registry=REGISTRY,
)
LEADER = Gauge("modelrelease_leader", "1 while this replica holds the operator Lease.", registry=REGISTRY)
LEASE_ERRORS = Counter(
    "modelrelease_lease_errors_total",
    "Attempts to acquire or renew the operator Lease that failed (API server unreachable, timeout, refusal).",
    registry=REGISTRY,
)


def count_phases(phases: dict[str, str]) -> None:
    """Set the by-phase gauge from ``release key -> phase`` (every known phase is reported, zeros included)."""
    from modelrelease.api.status import Phase

    for phase in Phase:
        RELEASES.labels(phase=phase.value).set(sum(1 for p in phases.values() if p == phase.value))


VERDICTS = ("pass", "fail", "inconclusive")
ROLES = ("candidate", "stable")


class ReleaseCollector(Collector):
    """``modelrelease_release_*``: one set of gauges per release, from the status its last pass wrote.

    ``leading()`` says whether this replica leads; a standby reports no
    release (its last statuses are another replica's past).  ``now()`` is
    the wall clock in seconds, for time in stage.
    """

    def __init__(self, leading: Callable[[], bool], now: Callable[[], float] = time.time) -> None:
        self._leading = leading
        self._now = now
        self._statuses: dict[tuple[str, str], ModelReleaseStatus] = {}

    def record(self, namespace: str, release: str, status: ModelReleaseStatus) -> None:
        self._statuses[(namespace, release)] = status

    def forget(self, namespace: str, release: str) -> None:
        self._statuses.pop((namespace, release), None)

    def describe(self) -> list[Metric]:
        return []  # collected lazily: no series to check at registration

    def collect(self) -> Iterator[Metric]:
        from modelrelease.api.status import Phase
        from modelrelease.engine.clock import parse_time

        keys = ["namespace", "release"]
        phase = GaugeMetricFamily(
            "modelrelease_release_phase",
            "1 for the release's current phase, 0 for the others.",
            labels=[*keys, "phase"],
        )
        stable = GaugeMetricFamily("modelrelease_release_stable_version", "The stable version.", labels=keys)
        candidate = GaugeMetricFamily(
            "modelrelease_release_candidate_version", "The version being rolled out (absent without one).", labels=keys
        )
        desired = GaugeMetricFamily(
            "modelrelease_release_desired_weight",
            "Percent of user traffic the current stage asks for the candidate (0 without a stage).",
            labels=keys,
        )
        actual = GaugeMetricFamily(
            "modelrelease_release_actual_weight",
            "Percent of user traffic the router reports on the candidate (0 without a stage).",
            labels=keys,
        )
        mirror = GaugeMetricFamily(
            "modelrelease_release_mirror_percent", "Percent of traffic copied to the candidate (shadow).", labels=keys
        )
        stage_index = GaugeMetricFamily(
            "modelrelease_release_stage_index", "Index of the current stage in spec.stages.", labels=[*keys, "stage"]
        )
        stage_seconds = GaugeMetricFamily(
            "modelrelease_release_stage_seconds",
            "Seconds since the current stage was entered.",
            labels=[*keys, "stage"],
        )
        checks = GaugeMetricFamily(
            "modelrelease_release_analysis_checks", "Analysis checks run in the current stage.", labels=keys
        )
        verdict = GaugeMetricFamily(
            "modelrelease_release_metric_verdict",
            "1 for the latest verdict of each analysis metric in the current stage, 0 for the others.",
            labels=[*keys, "metric", "verdict"],
        )
        value = GaugeMetricFamily(
            "modelrelease_release_metric_value",
            "Latest value of each analysis metric (pooled over the stage), for the candidate and the stable version.",
            labels=[*keys, "metric", "role"],
        )
        samples = GaugeMetricFamily(
            "modelrelease_release_metric_samples",
            "Requests (or other trials) the latest value of each analysis metric is based on.",
            labels=[*keys, "metric"],
        )
        families = [phase, stable, candidate, desired, actual, mirror, stage_index, stage_seconds, checks]
        families += [verdict, value, samples]
        if not self._leading():
            yield from families
            return
        now = self._now()
        for (namespace, release), status in sorted(self._statuses.items()):
            key = [namespace, release]
            for each in Phase:
                phase.add_metric([*key, each.value], 1.0 if status.phase == each else 0.0)
            if status.stable_version is not None:
                stable.add_metric(key, status.stable_version)
            if status.candidate_version is not None:
                candidate.add_metric(key, status.candidate_version)
            stage = status.stage
            desired.add_metric(key, stage.weight if stage else 0)
            actual.add_metric(key, stage.actual_weight if stage else 0)
            mirror.add_metric(key, stage.mirror if stage else 0)
            if stage is not None:
                stage_index.add_metric([*key, stage.name], stage.index)
                if stage.entered_at:
                    entered = parse_time(stage.entered_at).timestamp()
                    stage_seconds.add_metric([*key, stage.name], max(0.0, now - entered))
                checks.add_metric(key, status.analysis.checks)
            for result in status.analysis.metrics:
                for each_verdict in VERDICTS:
                    verdict.add_metric([*key, result.name, each_verdict], 1.0 if result.verdict == each_verdict else 0)
                for role, number in zip(ROLES, (result.candidate, result.baseline), strict=True):
                    if number is not None:
                        value.add_metric([*key, result.name, role], number)
                if result.samples is not None:
                    samples.add_metric([*key, result.name], result.samples)
        yield from families


def _leading() -> bool:
    """``modelrelease_leader`` read back: the elector sets it on every attempt to acquire or renew."""
    return any(sample.value == 1 for family in LEADER.collect() for sample in family.samples)


RELEASE_STATE = ReleaseCollector(_leading)
REGISTRY.register(RELEASE_STATE)


def record_release(namespace: str, release: str, status: ModelReleaseStatus) -> None:
    """A pass wrote this status: the release's gauges show it from the next scrape."""
    RELEASE_STATE.record(namespace, release, status)


def forget_release(namespace: str, release: str) -> None:
    """The release is gone: its gauges go too (its counters stay, as counters do)."""
    RELEASE_STATE.forget(namespace, release)


async def serve(
    port: int, healthy: Callable[[], bool], host: str = "127.0.0.1", describe: Callable[[], str] = lambda: ""
) -> web.AppRunner:
    """Start the endpoint; the caller cleans the returned runner up.

    ``/healthz`` answers 200 or 503 from ``healthy()``; its body adds ``describe()``
    (which replica leads), for whoever reads the probe by hand.
    """

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        detail = describe()
        text = ("ok" if ok else "not ready") + (f": {detail}" if detail else "")
        return web.Response(status=200 if ok else 503, text=text + "\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
