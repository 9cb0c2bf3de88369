"""The data plane's label-free and score exports (docs/metrics.md) that prediction-drift and auc read."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest

from devstack.traffic.generator import class_score
from devstack.traffic.metrics import TrafficMetrics
from modelrelease.serving.stubs import tensor_pb2


def test_the_positive_class_score_is_read_from_float_values_or_tensor_content() -> None:
    listed = tensor_pb2.TensorProto(float_val=[0.1, 0.2, 0.7])
    packed = tensor_pb2.TensorProto(tensor_content=np.array([0.3, 0.6, 0.1], dtype="<f4").tobytes())
    assert class_score(listed, 2) == np.float32(0.7)
    assert class_score(packed, 1) == np.float32(0.6)
    assert class_score(listed, 5) is None


def test_predictions_and_scores_are_exported_with_the_contracts_labels() -> None:
    metrics = TrafficMetrics()
    metrics.predictions.labels("digits", "2", "7").inc()
    metrics.score.labels("digits", "2", "7").observe(0.93)
    text = generate_latest(metrics.registry).decode()
    assert 'model_predictions_total{model="digits",predicted="7",version="2"} 1.0' in text
    assert 'model_prediction_score_bucket{actual="7",le="1.0",model="digits",version="2"} 1.0' in text
    assert 'model_prediction_score_bucket{actual="7",le="0.9",model="digits",version="2"} 0.0' in text
