"""The Prometheus provider and judges against a real Prometheus scraping the metric contract for two versions.

The exporter's counters grow at fixed rates per version (value = rate x
``SCALE`` x time since start), so every ratio the built-in templates compute
is known exactly: v1 is the good stable version, v2 a bad candidate.  The
rates are high enough (a few hundred events a second) that one window holds
the requests the sequential judge needs for a verdict.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from devstack import prometheus
from devstack.testing import wait_for
from modelrelease.analysis import (
    AnalysisContext,
    Measurement,
    Observation,
    PrometheusProvider,
    TemplateValues,
    Unmeasured,
    evaluate,
)
from modelrelease.api.spec import MetricSpec

pytestmark = pytest.mark.skipif(prometheus.find_binary() is None, reason="prometheus not installed (make setup)")

WINDOW = "10s"
SCALE = 50.0
SERVING = {"model_name": "digits", "namespace": "ml", "release": "digits"}
# (predicted, actual, per second); the positive class is "3".
OUTCOMES = {
    "1": [("3", "3", 2.0), ("5", "5", 7.0), ("3", "5", 0.5), ("5", "3", 0.5)],
    "2": [("3", "3", 1.0), ("5", "5", 4.0), ("3", "5", 3.0), ("5", "3", 2.0)],
}
STATUS = {"1": {"OK": 10.0}, "2": {"OK": 9.0, "INVALID_ARGUMENT": 1.0}}
# Cumulative requests per second at or below each bound, in microseconds as TF Serving reports.
LATENCY_BUCKETS = {
    "1": {"10000": 5.0, "50000": 10.0, "100000": 10.0, "500000": 10.0, "+Inf": 10.0},
    "2": {"10000": 0.0, "50000": 0.0, "100000": 5.0, "500000": 8.0, "+Inf": 10.0},
}
FEEDBACK = {"1": {"positive": 4.0, "negative": 1.0}, "2": {"positive": 1.0, "negative": 1.0}}
ABSOLUTE_ERROR = {"1": (2.0, 10.0), "2": (8.0, 10.0)}  # (sum, count) per second


class ContractExporter:
    """A prometheus_client collector for the metric contract; counters are rate x elapsed seconds."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        elapsed = (time.monotonic() - self.started) * SCALE
        outcomes = Metric("model_prediction_outcomes", "labelled outcomes", "counter")
        requests = Metric(":tensorflow:serving:request_count", "TF Serving requests", "unknown")
        latency = Metric(":tensorflow:serving:request_latency", "TF Serving latency (us)", "histogram")
        feedback = Metric("model_feedback", "user feedback", "counter")
        absolute_error = Metric("model_prediction_absolute_error", "regression error", "summary")
        for version in ("1", "2"):
            for predicted, actual, rate in OUTCOMES[version]:
                outcome = "correct" if predicted == actual else "incorrect"
                labels = {"model": "digits", "version": version, "outcome": outcome}
                labels |= {"predicted": predicted, "actual": actual}
                outcomes.add_sample("model_prediction_outcomes_total", labels, rate * elapsed)
            serving = {**SERVING, "version": version}
            for status, rate in STATUS[version].items():
                requests.add_sample(":tensorflow:serving:request_count", {**serving, "status": status}, rate * elapsed)
            timed = {**serving, "API": "predict", "entrypoint": "GRPC"}
            for bound, rate in LATENCY_BUCKETS[version].items():
                latency.add_sample(":tensorflow:serving:request_latency_bucket", {**timed, "le": bound}, rate * elapsed)
            latency.add_sample(":tensorflow:serving:request_latency_count", timed, 10.0 * elapsed)
            latency.add_sample(":tensorflow:serving:request_latency_sum", timed, 1e5 * elapsed)
            for kind, rate in FEEDBACK[version].items():
                labels = {"model": "digits", "version": version, "feedback": kind}
                feedback.add_sample("model_feedback_total", labels, rate * elapsed)
            error_sum, error_count = ABSOLUTE_ERROR[version]
            quality = {"model": "digits", "version": version}
            absolute_error.add_sample("model_prediction_absolute_error_sum", quality, error_sum * elapsed)
            absolute_error.add_sample("model_prediction_absolute_error_count", quality, error_count * elapsed)
        return [outcomes, requests, latency, feedback, absolute_error]


def text_format_handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    """Serve the classic text format only, as TF Serving does.

    prometheus_client's OpenMetrics output, which Prometheus asks for first,
    rewrites the colons in TF Serving's metric names to underscores.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def exporter_address() -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(ContractExporter())
    server = ThreadingHTTPServer(("127.0.0.1", 0), text_format_handler(registry))
    thread = threading.Thread(target=server.serve_forever, name="contract-exporter", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def values(version: int) -> TemplateValues:
    return TemplateValues(model="digits", version=version, namespace="ml", release="digits", interval=WINDOW)


def measure(provider: PrometheusProvider, metric: MetricSpec, version: int) -> Observation:
    return asyncio.run(provider.measure(metric, values(version)))


ACCURACY = MetricSpec.model_validate(
    {"name": "accuracy", "template": "accuracy", "min": 0.8, "compareToBaseline": {"maxDrop": 0.02}}
)


def wait_for_full_window(provider: PrometheusProvider) -> None:
    """Ratios are exact from the first scrapes; counts approach rate x window once the window has filled."""

    def enough() -> bool:
        seen = measure(provider, ACCURACY, 2)
        return isinstance(seen, Measurement) and seen.samples is not None and seen.samples >= 80 * SCALE

    wait_for(enough, timeout=40, message="Prometheus never held a full window of the exporter's counters")


@pytest.fixture(scope="module")
def provider(exporter_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProvider]:
    state_dir: Path = tmp_path_factory.mktemp("prometheus")
    with prometheus.serve(state_dir) as url:
        prometheus.register_target(state_dir, "contract-exporter", exporter_address)
        client = PrometheusProvider(url)
        wait_for_full_window(client)
        yield client


def value_of(observation: Observation) -> float:
    assert isinstance(observation, Measurement), observation
    return observation.value


@pytest.mark.parametrize(
    ("metric", "stable", "candidate"),
    [
        (MetricSpec(name="m", template="accuracy", min=0.8), 0.9, 0.5),
        (MetricSpec(name="m", template="precision", positive_class="3", min=0.5), 0.8, 0.25),
        (MetricSpec(name="m", template="recall", positive_class="3", min=0.5), 0.8, 1 / 3),
        (MetricSpec(name="m", template="f1", positive_class="3", min=0.5), 0.8, 2 / 7),
        (MetricSpec(name="m", template="tfserving-error-rate", max=0.01), 0.0, 0.1),
        (MetricSpec(name="m", template="feedback-positive-rate", min=0.6), 0.8, 0.5),
        (MetricSpec(name="m", template="mae", max=0.5), 0.2, 0.8),
    ],
    ids=["accuracy", "precision", "recall", "f1", "error-rate", "feedback", "mae"],
)
def test_builtin_templates_measure_each_version_from_its_own_series(
    provider: PrometheusProvider, metric: MetricSpec, stable: float, candidate: float
) -> None:
    assert value_of(measure(provider, metric, 1)) == pytest.approx(stable, abs=0.01)
    assert value_of(measure(provider, metric, 2)) == pytest.approx(candidate, abs=0.01)


def test_latency_is_measured_as_the_windows_buckets_and_its_p99_shown_in_seconds(
    provider: PrometheusProvider,
) -> None:
    latency = MetricSpec(name="latency", template="tfserving-latency-p99", max=0.25)
    stable = measure(provider, latency, 1)
    assert isinstance(stable, Measurement) and stable.series is not None
    buckets = dict(stable.series)
    # Prometheus 3 writes every `le` as a float ("500000" is stored as "500000.0"): compare the bounds' values.
    assert {float(le) for le in buckets} == {float(le) for le in LATENCY_BUCKETS["1"]}
    assert buckets["+Inf"] >= 80 * SCALE
    context = AnalysisContext("digits", "ml", "digits", WINDOW, 1, 2)
    [v1] = asyncio.run(evaluate([latency], context, provider))
    [v2] = asyncio.run(evaluate([latency], replace(context, candidate_version=2, baseline_version=1), provider))
    # p99 interpolates inside the bucket (10 ms, 50 ms] for v1; v2's lies above the last finite bound, 500 ms.
    assert v1.candidate == pytest.approx(0.0492, abs=0.002)
    assert v2.candidate == pytest.approx(0.5)
    assert (v1.verdict, v2.verdict) == ("pass", "fail"), (v1.message, v2.message)
    assert "share slower than 0.25s" in v2.message


def test_the_bad_candidate_fails_and_the_good_one_passes_against_each_other(provider: PrometheusProvider) -> None:
    metrics = [
        MetricSpec(name="error-rate", template="tfserving-error-rate", max=0.01),
        MetricSpec(name="latency-p99", template="tfserving-latency-p99", max=0.25),
        ACCURACY,
    ]
    bad = asyncio.run(evaluate(metrics, AnalysisContext("digits", "ml", "digits", WINDOW, 2, 1), provider))
    good = asyncio.run(evaluate(metrics, AnalysisContext("digits", "ml", "digits", WINDOW, 1, 2), provider))
    assert [r.verdict for r in bad] == ["fail", "fail", "fail"], [r.message for r in bad]
    assert [r.verdict for r in good] == ["pass", "pass", "pass"], [r.message for r in good]
    assert bad[2].candidate == pytest.approx(0.5, abs=0.01)
    assert bad[2].baseline == pytest.approx(0.9, abs=0.01)
    assert re.search(
        r"accuracy 0\.(50?\d*|49\d*) \([0-9.]+/[0-9.]+\) vs stable 0\.(90?\d*|89\d*) \([0-9.]+/[0-9.]+\)",
        bad[2].message,
    ), bad[2].message
    assert "> maxDrop 0.02" in bad[2].message


def test_a_version_without_traffic_is_inconclusive_never_passed(provider: PrometheusProvider) -> None:
    results = asyncio.run(
        evaluate([ACCURACY], AnalysisContext("digits", "ml", "digits", WINDOW, candidate_version=7), provider)
    )
    assert results[0].verdict == "inconclusive"
    assert "no data" in results[0].message


def test_too_few_requests_for_min_requests_is_inconclusive(provider: PrometheusProvider) -> None:
    strict = MetricSpec(name="accuracy", template="accuracy", min=0.8, min_requests=100_000)
    results = asyncio.run(evaluate([strict], AnalysisContext("digits", "ml", "digits", WINDOW, 2, 1), provider))
    assert results[0].verdict == "inconclusive"
    assert "minRequests is 100000" in results[0].message


def test_a_query_prometheus_rejects_is_inconclusive_with_its_error(provider: PrometheusProvider) -> None:
    broken = MetricSpec(name="broken", query="sum(rate(model_feedback_total[{{interval}}])", max=1)
    observed = measure(provider, broken, 1)
    assert isinstance(observed, Unmeasured)
    assert "refused" in observed.reason


def test_a_stopped_prometheus_makes_every_check_inconclusive(
    exporter_address: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state_dir = tmp_path_factory.mktemp("prometheus-stopped")
    with prometheus.serve(state_dir) as url:
        prometheus.register_target(state_dir, "contract-exporter", exporter_address)
        client = PrometheusProvider(url, timeout_seconds=2)
        wait_for(
            lambda: isinstance(measure(client, ACCURACY, 1), Measurement),
            timeout=30,
            message="the second Prometheus never measured the exporter",
        )
    results = asyncio.run(evaluate([ACCURACY], AnalysisContext("digits", "ml", "digits", WINDOW, 2, 1), client))
    assert results[0].verdict == "inconclusive"
    assert "Prometheus unreachable" in results[0].message
