"""The operator's own metrics and health endpoint (``/metrics``, ``/healthz`` on ``--metrics-port``).

Why a private registry: the process imports libraries that may register
collectors of their own, and the operator's dashboard should show exactly
the series documented here.  Why aiohttp: kopf already runs on it, so the
endpoint lives in the operator's event loop without another thread.
"""

from __future__ import annotations

from collections.abc import Callable

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
PROMOTIONS = Counter("modelrelease_promotions_total", "Versions made stable, by reason.", ["reason"], registry=REGISTRY)
ROLLBACKS = Counter("modelrelease_rollbacks_total", "Candidates rolled back, by reason.", ["reason"], registry=REGISTRY)
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
