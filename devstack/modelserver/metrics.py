"""TF Serving's metrics, rendered the way its Prometheus exporter does.

TF Serving names metrics like ``/tensorflow/serving/request_count`` and its
exporter turns the slashes into colons; counters keep their bare name (no
``_total`` suffix, which is why prometheus_client is not used here: it would
append one).  Latencies are microseconds in buckets ``Exponential(10, 1.8, 33)``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

LabelValues = tuple[str, ...]


def exponential_buckets(scale: float, growth: float, count: int) -> list[float]:
    return [round(scale * growth**i, 6) for i in range(count)]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exported_name(tf_name: str) -> str:
    return tf_name.replace("/", ":")


class Counter:
    def __init__(self, tf_name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = exported_name(tf_name)
        self.help = help_text
        self.label_names = tuple(labels)
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()

    def inc(self, *values: str, amount: float = 1) -> None:
        with self._lock:
            self._values[values] = self._values.get(values, 0) + amount

    def value(self, *values: str) -> float:
        with self._lock:
            return self._values.get(values, 0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        lines = [f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]
        return lines


class Histogram:
    def __init__(self, tf_name: str, help_text: str, labels: Sequence[str], bounds: Sequence[float]) -> None:
        self.name = exported_name(tf_name)
        self.help = help_text
        self.label_names = tuple(labels)
        self.bounds = list(bounds)
        # Per label set: bucket counts (one per bound, then +Inf), sum, count.
        self._cells: dict[LabelValues, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *values: str) -> None:
        with self._lock:
            buckets, totals = self._cells.setdefault(values, ([0] * (len(self.bounds) + 1), [0.0, 0.0]))
            index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
            buckets[index] += 1
            totals[0] += value
            totals[1] += 1

    def count(self, *values: str) -> int:
        with self._lock:
            cell = self._cells.get(values)
            return int(cell[1][1]) if cell else 0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(b), list(t))) for k, (b, t) in self._cells.items())
        lines = [f"# TYPE {self.name} histogram"]
        for key, (buckets, (total, count)) in items:
            cumulative = 0
            for bound, n in zip([*self.bounds, float("inf")], buckets, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else _number(bound)
                bucket_labels = _labels(self.label_names, key, 'le="' + le + '"')
                lines.append(f"{self.name}_bucket{bucket_labels} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {int(count)}")
        return lines


LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)


class ServingMetrics:
    """The metrics one model server exports; each server process owns one instance."""

    def __init__(self) -> None:
        self.request_count = Counter(
            "/tensorflow/serving/request_count", "The total number of requests.", ("model_name", "status")
        )
        self.request_latency = Histogram(
            "/tensorflow/serving/request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint", "status"),
            LATENCY_BUCKETS,
        )
        self.runtime_latency = Histogram(
            "/tensorflow/serving/runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ("model_name", "API", "runtime"),
            LATENCY_BUCKETS,
        )
        self.request_example_count_total = Counter(
            "/tensorflow/serving/request_example_count_total", "The total number of tensorflow.Examples.", ("model",)
        )
        self.load_attempt_count = Counter(
            "/tensorflow/cc/saved_model/load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ("model_path", "status"),
        )
        self.load_latency = Counter(
            "/tensorflow/cc/saved_model/load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ("model_path",),
        )
        self.graph_runs = Counter("/tensorflow/core/graph_runs", "The number of graph executions used to collect.", ())

    def record_request(self, model: str, api: str, entrypoint: str, status: str, latency_us: float) -> None:
        self.request_count.inc(model, status)
        self.request_latency.observe(latency_us, model, api, entrypoint, status)

    def render(self) -> str:
        sections: list[Counter | Histogram] = [
            self.request_count,
            self.request_latency,
            self.runtime_latency,
            self.request_example_count_total,
            self.load_attempt_count,
            self.load_latency,
            self.graph_runs,
        ]
        lines: list[str] = []
        for metric in sections:
            lines += metric.render()
        return "\n".join(lines) + "\n"
