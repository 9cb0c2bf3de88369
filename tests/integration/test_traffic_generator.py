"""The traffic generator against real gRPC servers and a real Prometheus: the metric contract holds end to end.

The servers here are tiny PredictionServices (TF Serving's generated stubs,
loaded the operator's TensorFlow-free way) whose answers are known in advance: each input encodes its label, and
version "3" gets a fixed, known subset wrong.  So every count the generator
exports can be checked exactly, and the PromQL in docs/metrics.md with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from devstack import prometheus
from devstack.testing import wait_for
from devstack.traffic import Endpoint, ServiceResolver, StaticEndpoints, TrafficConfig, running
from modelrelease.serving.stubs import predict_pb2, prediction_service_pb2_grpc, types_pb2

N_SAMPLES = 200
# Version 3 answers wrongly for samples whose second pixel is set: exactly these.
WRONG_FOR_V3 = {i for i in range(N_SAMPLES) if i % 7 < 3}


def samples() -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(N_SAMPLES) % 10
    inputs = np.zeros((N_SAMPLES, 64), dtype=np.float32)
    inputs[:, 0] = labels / 16.0
    inputs[:, 1] = [1.0 if i in WRONG_FOR_V3 else 0.0 for i in range(N_SAMPLES)]
    return inputs, labels


class KnownAnswers(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, version: int) -> None:
        self.version = version
        self.cohort_headers: list[str | None] = []

    def Predict(self, request: Any, context: Any) -> Any:
        self.cohort_headers.append(dict(context.invocation_metadata()).get("x-cohort"))
        pixels = np.frombuffer(request.inputs["pixels"].tensor_content, dtype="<f4")
        predicted = round(float(pixels[0]) * 16)
        if self.version == 3 and pixels[1] > 0.5:
            predicted = (predicted + 1) % 10
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = self.version
        classes = response.outputs["classes"]
        classes.dtype = types_pb2.DT_INT64
        classes.tensor_shape.dim.add(size=1)
        classes.int64_val.append(predicted)
        return response


def serve(host: str, version: int) -> tuple[grpc.Server, KnownAnswers, Endpoint]:
    servicer = KnownAnswers(version)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    return server, servicer, Endpoint(host, port, labels={"modelrelease.io/version": str(version)})


@pytest.fixture
def servers() -> Iterator[dict[int, tuple[KnownAnswers, Endpoint]]]:
    started = {version: serve(f"127.0.31.{version}", version) for version in (1, 3)}
    yield {version: (servicer, endpoint) for version, (_, servicer, endpoint) in started.items()}
    for server, _, _ in started.values():
        server.stop(grace=None)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if prometheus.find_binary() is None:
        pytest.skip("prometheus not installed (make setup)")
    state_dir = tmp_path_factory.mktemp("state")
    with prometheus.serve(state_dir) as url:
        yield url, state_dir


def scalar(url: str, promql: str) -> float | None:
    return prometheus.query_value(url, promql)


def test_outcomes_feedback_and_requests_reach_prometheus_and_match_the_answers(
    servers: dict[int, tuple[KnownAnswers, Endpoint]], prom: tuple[str, Path]
) -> None:
    url, state_dir = prom
    source = StaticEndpoints({"digits": [endpoint for _, endpoint in servers.values()]})
    inputs, labels = samples()
    config = TrafficConfig(rate=100, duration=30, count=400, feedback_noise=0.0, seed=3)
    with running(config, ServiceResolver(source, "digits"), inputs, labels, register_prometheus=state_dir) as gen:
        assert gen.wait(timeout=30), "the generator did not finish its 400 requests"
        stats = gen.stats
        assert stats.answered == 400
        assert stats.codes == {"OK": 400}
        # kube-proxy's even split over two endpoints.
        assert 150 < stats.versions["1"] < 250
        assert stats.accuracy("1") == 1.0
        assert stats.accuracy("3") == pytest.approx(4 / 7, abs=0.1)

        selector = '{job="traffic",model="digits"}'
        wait_for(
            lambda: scalar(url, f"sum(model_prediction_outcomes_total{selector})") == 400,
            timeout=20,
            message="Prometheus never saw all 400 outcomes",
        )
        accuracy = prometheus.query(
            url,
            f'sum by (version) (model_prediction_outcomes_total{{job="traffic",outcome="correct"}})'
            f" / sum by (version) (model_prediction_outcomes_total{selector})",
        )
        by_version = {series["metric"]["version"]: float(series["value"][1]) for series in accuracy}
        assert by_version == {"1": 1.0, "3": pytest.approx(stats.accuracy("3"))}
        # Without noise, thumbs up exactly when the answer was right.
        positive_rate = scalar(
            url,
            'sum(model_feedback_total{job="traffic",version="3",feedback="positive"})'
            ' / sum(model_feedback_total{job="traffic",version="3"})',
        )
        assert positive_rate == pytest.approx(stats.accuracy("3"))
        requests_v1 = scalar(url, 'sum(traffic_requests_total{job="traffic",version="1",code="OK"})')
        assert requests_v1 == stats.versions["1"]
        # Recall of class 0 for v3: its wrong answers on class-0 samples are exactly the known subset.
        recall_0 = scalar(
            url,
            'sum(model_prediction_outcomes_total{job="traffic",version="3",actual="0",outcome="correct"})'
            ' / sum(model_prediction_outcomes_total{job="traffic",version="3",actual="0"})',
        )
        assert recall_0 is not None and 0 < recall_0 < 1
        mae_v3 = scalar(
            url,
            'sum(model_prediction_absolute_error_sum{job="traffic",version="3"})'
            ' / sum(model_prediction_absolute_error_count{job="traffic",version="3"})',
        )
        assert mae_v3 is not None and mae_v3 > 0
        assert scalar(url, 'sum(model_prediction_absolute_error_sum{job="traffic",version="1"})') == 0


def test_cohort_header_is_sent_by_its_share_of_requests(servers: dict[int, tuple[KnownAnswers, Endpoint]]) -> None:
    servicer, endpoint = servers[1]
    inputs, labels = samples()
    config = TrafficConfig(rate=200, duration=10, count=300, headers={"x-cohort": "b"}, header_share=0.3)
    with running(config, ServiceResolver(StaticEndpoints({"s": [endpoint]}), "s"), inputs, labels) as gen:
        assert gen.wait(timeout=20)
    seen = servicer.cohort_headers
    assert len(seen) == 300
    assert seen.count("b") / len(seen) == pytest.approx(0.3, abs=0.08)
    assert set(seen) <= {"b", None}


def test_a_dead_endpoint_counts_as_unavailable_for_its_pods_version() -> None:
    dead = Endpoint("127.0.31.9", int(prometheus.free_address("127.0.31.9").rsplit(":", 1)[1]))
    dead = Endpoint(dead.host, dead.port, labels={"modelrelease.io/version": "2"})
    inputs, labels = samples()
    config = TrafficConfig(rate=100, duration=10, count=20, timeout=2)
    with running(config, ServiceResolver(StaticEndpoints({"s": [dead]}), "s"), inputs, labels) as gen:
        assert gen.wait(timeout=20)
        body = gen.metrics.registry.get_sample_value(
            "traffic_requests_total", {"model": "digits", "version": "2", "code": "UNAVAILABLE"}
        )
    assert gen.stats.codes == {"UNAVAILABLE": 20}
    assert body == 20


def test_the_same_seed_sends_the_same_requests_to_the_same_endpoints(
    servers: dict[int, tuple[KnownAnswers, Endpoint]],
) -> None:
    source = StaticEndpoints({"digits": [endpoint for _, endpoint in servers.values()]})
    inputs, labels = samples()
    runs = []
    for _ in range(2):
        config = TrafficConfig(rate=200, duration=10, count=100, seed=42)
        with running(config, ServiceResolver(source, "digits"), inputs, labels) as gen:
            assert gen.wait(timeout=20)
        runs.append(gen.stats)
    assert runs[0].versions == runs[1].versions
    assert runs[0].outcomes == runs[1].outcomes


DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
DOC_BLOCK = re.compile(r"\*\*(?P<name>[^*]+)\*\*(?:(?!\*\*).)*?```promql\n(?P<query>.*?)```", re.S)


def documented_queries(model: str, version: str, positive_class: str) -> dict[str, list[str]]:
    """The ```promql blocks of docs/metrics.md by their bold heading, placeholders filled in."""
    values = {"model": model, "version": version, "namespace": "ns", "release": "r", "interval": "10m"}
    found: dict[str, list[str]] = {}
    for block in DOC_BLOCK.finditer(DOCS.read_text()):
        query = " ".join(block["query"].split("\n"))
        query = query.replace("{S,", '{model="{{model}}",version="{{version}}",').replace(
            "{S}", '{model="{{model}}",version="{{version}}"}'
        )
        query = query.replace("W)", "[{{interval}}])").replace('"c"', f'"{positive_class}"')
        for name, value in values.items():
            query = query.replace("{{" + name + "}}", value)
        found[block["name"].strip()] = [query]
    # MAE and MSE share a block, one query per line.
    mae_mse = next(name for name in found if name.startswith("MAE"))
    found[mae_mse] = [line for line in re.split(r"(?<=\)) (?=sum\()", found[mae_mse][0]) if line]
    return found


def test_every_documented_query_evaluates_and_quality_ones_match_the_generator(
    servers: dict[int, tuple[KnownAnswers, Endpoint]], prom: tuple[str, Path]
) -> None:
    url, state_dir = prom
    source = StaticEndpoints({"digits": [servers[3][1]]})
    inputs, labels = samples()
    config = TrafficConfig(model="docs", rate=100, duration=30, count=300, feedback_noise=0.0, seed=5)
    with running(
        config,
        ServiceResolver(source, "digits"),
        inputs,
        labels,
        register_prometheus=state_dir,
        job="docs",
        scraped_by=url,
    ) as gen:
        assert gen.wait(timeout=30)
        wait_for(
            lambda: scalar(url, 'sum(model_prediction_outcomes_total{model="docs"})') == 300,
            timeout=20,
            message="Prometheus never saw the 300 outcomes",
        )
        queries = documented_queries("docs", "3", "0")
        precision, recall = queries["Precision for a positive class `c`"][0], queries["Recall for class `c`"][0]
        f1 = queries["F1 for class `c`"][0].replace("(P)", f"({precision})").replace("(R)", f"({recall})")
        queries["F1 for class `c`"] = [f1]
        results = {name: [prometheus.query(url, query) for query in group] for name, group in queries.items()}
    # increase() over a series' first samples under-counts a little: close, not exact.
    accuracy = float(results["Accuracy"][0][0]["value"][1])
    assert accuracy == pytest.approx(gen.stats.accuracy("3"), abs=0.05)
    assert float(results["Feedback positive rate"][0][0]["value"][1]) == pytest.approx(accuracy, abs=0.05)
    for name in ("Precision for a positive class `c`", "Recall for class `c`", "F1 for class `c`"):
        assert 0 <= float(results[name][0][0]["value"][1]) <= 1, name
    assert 0 < float(results["Macro-averaged recall"][0][0]["value"][1]) < 1
    mae, mse = (float(result[0]["value"][1]) for result in results[next(n for n in results if n.startswith("MAE"))])
    assert 0 < mae <= mse
    assert float(results["Share of user traffic a version answers"][0][0]["value"][1]) == 1.0
