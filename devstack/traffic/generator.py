"""Labelled traffic: held-out digits sent as gRPC Predict, judged against their true labels.

Open loop at a fixed rate, bounded in rate, duration and count, so a test or
a demo can never flood the shared machine.  Every random choice for request i
(which sample, which cohort, which endpoint, whether the user gives feedback
and whether it is noise) is drawn from one seeded RNG before the request is
sent, so a run is reproducible whatever order the answers arrive in.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from prometheus_client import start_http_server

from devstack.traffic.endpoints import Endpoint, require_loopback, split_host_port
from devstack.traffic.metrics import TrafficMetrics
from devstack.traffic.routing import Decision, NoRoute, Resolver

MAX_RATE = 500.0  # requests per second
MAX_DURATION = 3600.0  # seconds
NO_ENDPOINT_VERSION = "none"


@dataclass(frozen=True)
class TrafficConfig:
    model: str = "digits"
    rate: float = 20.0
    duration: float = 30.0
    count: int | None = None
    # Sent, as gRPC metadata, by ``header_share`` of requests: a cohort of users.
    headers: Mapping[str, str] = field(default_factory=dict)
    header_share: float = 0.0
    # Share of answered requests whose user gives a thumbs up or down at all.
    feedback_rate: float = 1.0
    # Chance a user's thumb contradicts whether the answer was right.
    feedback_noise: float = 0.05
    seed: int = 0
    # Walk the samples in order (each once per pass) instead of drawing them at random:
    # a run of len(samples) requests then measures exactly the held-out accuracy.
    sequential: bool = False
    timeout: float = 5.0
    signature: str = "serving_default"
    input_name: str = "pixels"
    output_name: str = "classes"
    scores_name: str = "scores"
    # The class whose score ``model_prediction_score`` observes (the positive class of the auc template).
    positive_class: int = 7
    max_in_flight: int = 32

    def __post_init__(self) -> None:
        if not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE:.0f}] requests/s, got {self.rate}")
        if not 0 < self.duration <= MAX_DURATION:
            raise ValueError(f"duration must be in (0, {MAX_DURATION:.0f}] s, got {self.duration}")
        if self.count is not None and self.count < 0:
            raise ValueError("count must not be negative")
        for name in ("header_share", "feedback_rate", "feedback_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


@dataclass(frozen=True)
class PlannedRequest:
    index: int
    sample: int
    headers: Mapping[str, str]
    decision: Decision | None
    no_route: str
    gives_feedback: bool
    noisy_feedback: bool


@dataclass
class TrafficStats:
    """What the generator saw, independent of Prometheus: for tests and the CLI's summary."""

    sent: int = 0
    answered: int = 0
    mirrored: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (version, correct|incorrect)
    versions: Counter[str] = field(default_factory=Counter)  # answers users saw, by version
    cohort_versions: Counter[tuple[bool, str]] = field(default_factory=Counter)  # (has cohort header, version)

    def accuracy(self, version: str) -> float | None:
        correct, incorrect = self.outcomes[(version, "correct")], self.outcomes[(version, "incorrect")]
        return correct / (correct + incorrect) if correct + incorrect else None

    def copy(self) -> TrafficStats:
        return TrafficStats(
            self.sent,
            self.answered,
            self.mirrored,
            Counter(self.codes),
            Counter(self.outcomes),
            Counter(self.versions),
            Counter(self.cohort_versions),
        )


def predict_request(model: str, signature: str, input_name: str, pixels: np.ndarray) -> Any:
    # The operator's stub loader: TF Serving's protobufs without importing TensorFlow
    # (tens of MB and a tenth of a second instead of ~600 MB and 3 s per generator).
    from modelrelease.serving.stubs import predict_pb2, types_pb2

    row = np.asarray(pixels, dtype="<f4").reshape(1, -1)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    tensor = request.inputs[input_name]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in row.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = row.tobytes()
    return request


def class_score(tensor: Any, index: int) -> float | None:
    """The score of class ``index`` in the first row of a float output, or None when it holds no such column."""
    values: Any = list(tensor.float_val) if tensor.float_val else None
    if values is None and tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype="<f4")
    if values is None or len(values) <= index:
        return None
    return float(values[index])


def first_class(tensor: Any) -> int:
    """The first value of an integer output, whether the server filled ``int64_val`` or ``tensor_content``."""
    if tensor.int64_val:
        return int(tensor.int64_val[0])
    if tensor.int_val:
        return int(tensor.int_val[0])
    if tensor.tensor_content:
        return int(np.frombuffer(tensor.tensor_content, dtype="<i8")[0])
    raise ValueError("the classes output holds no values")


class TrafficGenerator:
    def __init__(
        self, config: TrafficConfig, resolver: Resolver, inputs: np.ndarray, labels: np.ndarray, name: str = "traffic"
    ) -> None:
        if len(inputs) != len(labels) or len(inputs) == 0:
            raise ValueError("inputs and labels must be non-empty and of the same length")
        self.config = config
        self.name = name
        self.metrics = TrafficMetrics()
        self.error: BaseException | None = None
        self._resolver = resolver
        self._inputs = np.asarray(inputs, dtype=np.float32)
        self._labels = np.asarray(labels).astype(int)
        self._rng = random.Random(config.seed)
        self._requests: dict[int, Any] = {}
        self._stubs: dict[str, tuple[grpc.Channel, Any]] = {}
        self._stats = TrafficStats()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._metrics_server: Any = None
        self.metrics_address: str | None = None
        self._wrong: set[str] = set()

    def answer_wrongly(self, version: str) -> None:
        """Fault injection: from now on every answer of ``version`` reaches the user as a wrong class.

        The data plane corrupts the version's answers (as a bad feature
        pipeline or a broken post-processing step would): accuracy, feedback
        and errors-by-class all see them, so the operator's judges can catch
        a version that turned bad after it was judged good.
        """
        with self._lock:
            self._wrong.add(version)

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def serve_metrics(self, address: str = "127.0.0.1:0") -> str:
        """Expose ``/metrics`` on a loopback address; returns the bound ``host:port``."""
        host, port = split_host_port(address)
        require_loopback(host)
        server, thread = start_http_server(port, addr=host, registry=self.metrics.registry)
        self._metrics_server = (server, thread)
        self.metrics_address = f"{host}:{server.server_address[1]}"
        return self.metrics_address

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_guarded, name=f"{self.name}-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the generator has sent everything it will send and every answer is in."""
        return self._done.wait(timeout)

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.config.timeout + 5)
        for channel, _ in self._stubs.values():
            channel.close()
        self._stubs.clear()
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._metrics_server = None

    @property
    def stats(self) -> TrafficStats:
        with self._lock:
            return self._stats.copy()

    # --- sending -----------------------------------------------------------------------------------------------

    def run(self) -> TrafficStats:
        """Send until the duration, the count or ``stop()`` ends it, then wait for the answers in flight."""
        config = self.config
        started = time.monotonic()
        index = 0
        try:
            while not self._stop.is_set():
                if config.count is not None and index >= config.count:
                    break
                due = started + index / config.rate
                if due - started >= config.duration:
                    break
                # Pacing an open-loop generator, not synchronisation: returns early on stop().
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                self._send(self._plan(index))
                index += 1
            self._drain(deadline=time.monotonic() + config.timeout + 1)
        finally:
            self._done.set()
        return self.stats

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # surfaced through .error and by running() on exit
            self.error = exc
            self._done.set()

    def _plan(self, index: int) -> PlannedRequest:
        rng, config = self._rng, self.config
        sample = index % len(self._labels) if config.sequential else rng.randrange(len(self._labels))
        headers = dict(config.headers) if config.headers and rng.random() < config.header_share else {}
        try:
            decision, no_route = self._resolver.resolve(headers, rng), ""
        except NoRoute as exc:
            decision, no_route = None, str(exc)
        gives_feedback = rng.random() < config.feedback_rate
        noisy = rng.random() < config.feedback_noise
        return PlannedRequest(index, sample, headers, decision, no_route, gives_feedback, noisy)

    def _stub(self, endpoint: Endpoint) -> Any:
        from modelrelease.serving.stubs import prediction_service_pb2_grpc

        target = endpoint.target
        if target not in self._stubs:
            # Loopback only: a proxy from the environment must never see these requests.
            channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
            self._stubs[target] = (channel, prediction_service_pb2_grpc.PredictionServiceStub(channel))
        return self._stubs[target][1]

    def _request(self, sample: int) -> Any:
        if sample not in self._requests:
            config = self.config
            self._requests[sample] = predict_request(
                config.model, config.signature, config.input_name, self._inputs[sample]
            )
        return self._requests[sample]

    def _send(self, plan: PlannedRequest) -> None:
        with self._lock:
            self._stats.sent += 1
        if plan.decision is None:
            self._record_failure(plan, None, "UNAVAILABLE", mirrored=False, seconds=0.0)
            return
        metadata = tuple((name.lower(), value) for name, value in plan.headers.items())
        for endpoint, mirrored in ((plan.decision.primary, False), *((m, True) for m in plan.decision.mirrors)):
            self._acquire_slot()
            started = time.monotonic()
            future = self._stub(endpoint).Predict.future(
                self._request(plan.sample), timeout=self.config.timeout, metadata=metadata
            )
            future.add_done_callback(
                lambda done, endpoint=endpoint, mirrored=mirrored, started=started: self._on_answer(
                    plan, endpoint, mirrored, started, done
                )
            )

    def _acquire_slot(self) -> None:
        with self._idle:
            while self._in_flight >= self.config.max_in_flight:
                self._idle.wait(0.5)
            self._in_flight += 1

    def _drain(self, deadline: float) -> None:
        with self._idle:
            while self._in_flight > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._idle.wait(remaining)

    # --- recording ---------------------------------------------------------------------------------------------

    def _on_answer(self, plan: PlannedRequest, endpoint: Endpoint, mirrored: bool, started: float, done: Any) -> None:
        seconds = time.monotonic() - started
        try:
            try:
                response = done.result()
            except grpc.RpcError as exc:
                self._record_failure(plan, endpoint, exc.code().name, mirrored, seconds)
                return
            version = str(response.model_spec.version.value) if response.model_spec.HasField("version") else ""
            predicted = first_class(response.outputs[self.config.output_name])
            scores = response.outputs.get(self.config.scores_name) if self.config.scores_name else None
            score = class_score(scores, self.config.positive_class) if scores is not None else None
            self._record_answer(plan, version or endpoint.version or "unknown", predicted, mirrored, seconds, score)
        except Exception:
            self._record_failure(plan, endpoint, "INTERNAL", mirrored, seconds)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _record_answer(
        self, plan: PlannedRequest, version: str, predicted: int, mirrored: bool, seconds: float, score: float | None
    ) -> None:
        model, metrics = self.config.model, self.metrics
        actual = int(self._labels[plan.sample])
        with self._lock:
            if version in self._wrong and predicted == actual:
                predicted = (actual + 1) % 10
        outcome = "correct" if predicted == actual else "incorrect"
        metrics.predictions.labels(model, version, str(predicted)).inc()
        metrics.outcomes.labels(model, version, outcome, str(predicted), str(actual)).inc()
        if score is not None:
            metrics.score.labels(model, version, str(actual)).observe(score)
        metrics.absolute_error.labels(model, version).observe(abs(predicted - actual))
        metrics.squared_error.labels(model, version).observe((predicted - actual) ** 2)
        with self._lock:
            self._stats.outcomes[(version, outcome)] += 1
            if mirrored:
                self._stats.mirrored += 1
            else:
                self._stats.answered += 1
                self._stats.codes["OK"] += 1
                self._stats.versions[version] += 1
                self._stats.cohort_versions[(bool(plan.headers), version)] += 1
        if mirrored:
            metrics.mirrored.labels(model, version, "OK").inc()
            return
        metrics.requests.labels(model, version, "OK").inc()
        metrics.duration.labels(model, version, "OK").observe(seconds)
        if plan.gives_feedback:
            positive = (outcome == "correct") != plan.noisy_feedback
            metrics.feedback.labels(model, version, "positive" if positive else "negative").inc()

    def _record_failure(
        self, plan: PlannedRequest, endpoint: Endpoint | None, code: str, mirrored: bool, seconds: float
    ) -> None:
        model = self.config.model
        version = NO_ENDPOINT_VERSION if endpoint is None else (endpoint.version or "unknown")
        if mirrored:
            self.metrics.mirrored.labels(model, version, code).inc()
            return
        self.metrics.requests.labels(model, version, code).inc()
        self.metrics.duration.labels(model, version, code).observe(seconds)
        with self._lock:
            self._stats.codes[code] += 1


def wait_until_scraped(prometheus_url: str, job: str, address: str, timeout: float) -> None:
    from devstack import prometheus

    deadline = time.monotonic() + timeout
    selector = f'up{{job="{job}",instance="{address}"}} == 1'
    while not prometheus.query(prometheus_url, selector):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Prometheus at {prometheus_url} did not scrape {address} within {timeout:.0f}s")
        time.sleep(0.2)


@contextmanager
def running(
    config: TrafficConfig,
    resolver: Resolver,
    inputs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    metrics_address: str = "127.0.0.1:0",
    register_prometheus: Path | None = None,
    job: str = "traffic",
    scraped_by: str | None = None,
    scrape_timeout: float = 30.0,
) -> Iterator[TrafficGenerator]:
    """Run a generator in a background thread for the ``with`` block (the pytest helper).

    Leaving the block stops sending, waits for answers in flight, stops the
    metrics server and removes the Prometheus target; an error the sender hit
    is raised here so a test cannot pass over it.  With ``scraped_by`` (a
    Prometheus URL) sending starts only once that Prometheus scrapes the
    generator, so ``increase()`` over the run sees every request.
    """
    from devstack import prometheus

    if inputs is None or labels is None:
        from devstack.models import load_holdout

        inputs, labels = load_holdout()
    generator = TrafficGenerator(config, resolver, inputs, labels, name=job)
    address = generator.serve_metrics(metrics_address)
    if register_prometheus is not None:
        prometheus.register_target(register_prometheus, job, address, {"component": "traffic-generator"})
    try:
        if scraped_by is not None:
            wait_until_scraped(scraped_by, job, address, scrape_timeout)
        generator.start()
        yield generator
    finally:
        generator.close()
        if register_prometheus is not None:
            with suppress(OSError):
                prometheus.unregister_target(register_prometheus, job, address)
    if generator.error is not None:
        raise generator.error
