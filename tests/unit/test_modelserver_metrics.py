"""TF Serving's Prometheus exposition: colon names, bare counters, cumulative microsecond buckets."""

from __future__ import annotations

from devstack.modelserver.metrics import Counter, Histogram, ServingMetrics, exponential_buckets


def test_counter_keeps_tf_serving_name_without_total_suffix() -> None:
    counter = Counter("/tensorflow/serving/request_count", "h", ("model_name", "status"))
    counter.inc("digits", "OK")
    counter.inc("digits", "OK")
    assert counter.render() == [
        "# TYPE :tensorflow:serving:request_count counter",
        ':tensorflow:serving:request_count{model_name="digits",status="OK"} 2',
    ]


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram("/x/latency", "h", ("api",), [10, 100])
    for value in (5, 50, 500):
        histogram.observe(value, "predict")
    assert histogram.render() == [
        "# TYPE :x:latency histogram",
        ':x:latency_bucket{api="predict",le="10"} 1',
        ':x:latency_bucket{api="predict",le="100"} 2',
        ':x:latency_bucket{api="predict",le="+Inf"} 3',
        ':x:latency_sum{api="predict"} 555',
        ':x:latency_count{api="predict"} 3',
    ]


def test_tf_serving_latency_buckets_start_at_ten_microseconds_and_grow_by_1_8() -> None:
    buckets = exponential_buckets(10, 1.8, 33)
    assert buckets[:3] == [10, 18, 32.4]
    assert len(buckets) == 33


def test_label_values_are_escaped() -> None:
    counter = Counter("/c", "h", ("path",))
    counter.inc('a"b\\c\nd')
    assert counter.render()[1] == ':c{path="a\\"b\\\\c\\nd"} 1'


def test_a_request_counts_once_and_lands_in_the_latency_histogram() -> None:
    metrics = ServingMetrics()
    metrics.record_request("digits", "Predict", "GRPC", "INVALID_ARGUMENT", 42.0)
    assert metrics.request_count.value("digits", "INVALID_ARGUMENT") == 1
    assert metrics.request_latency.count("digits", "Predict", "GRPC", "INVALID_ARGUMENT") == 1
    page = metrics.render()
    assert ':tensorflow:serving:request_latency_bucket{model_name="digits",API="Predict",entrypoint="GRPC",' in page
