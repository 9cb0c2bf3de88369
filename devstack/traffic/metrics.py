"""The metric contract (docs/metrics.md): what the operator's quality templates query.

Each generator has its own registry, so several can run in one test process
and each ``/metrics`` shows only its own traffic.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary

OUTCOMES = "model_prediction_outcomes"
FEEDBACK = "model_feedback"
REQUESTS = "traffic_requests"
MIRRORED = "traffic_mirrored_requests"
DURATION = "traffic_request_duration_seconds"
ABSOLUTE_ERROR = "model_prediction_absolute_error"
SQUARED_ERROR = "model_prediction_squared_error"
PREDICTIONS = "model_predictions"
SCORE = "model_prediction_score"

# The positive class's score, a probability: ten equal buckets are enough for a Mann-Whitney AUC.
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# Loopback gRPC to a Python model server: single-digit milliseconds, up to the deadline.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class TrafficMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.outcomes = Counter(
            OUTCOMES,
            "Predictions judged against the true label, mirrored (shadow) answers included.",
            ["model", "version", "outcome", "predicted", "actual"],
            registry=self.registry,
        )
        self.feedback = Counter(
            FEEDBACK,
            "Simulated user feedback (thumbs up/down) on answers users saw.",
            ["model", "version", "feedback"],
            registry=self.registry,
        )
        self.requests = Counter(
            REQUESTS,
            "User requests by the version that answered (or the pod's version on failure) and gRPC status code.",
            ["model", "version", "code"],
            registry=self.registry,
        )
        self.mirrored = Counter(
            MIRRORED,
            "Mirrored (shadow) copies of user requests; their answers are discarded.",
            ["model", "version", "code"],
            registry=self.registry,
        )
        # The regression part of the contract (MAE, MSE).  For the digits classifier the
        # digit is read as a number: no quality measure, but it exercises the templates.
        self.absolute_error = Summary(
            ABSOLUTE_ERROR,
            "|predicted - actual| per prediction, for regression models (MAE = _sum / _count).",
            ["model", "version"],
            registry=self.registry,
        )
        self.squared_error = Summary(
            SQUARED_ERROR,
            "(predicted - actual)^2 per prediction, for regression models (MSE = _sum / _count).",
            ["model", "version"],
            registry=self.registry,
        )
        # Label-free: every answer, mirrored ones included, by the class it predicted (prediction-drift).
        self.predictions = Counter(
            PREDICTIONS,
            "Answers by predicted class, with or without a known true label (mirrored answers included).",
            ["model", "version", "predicted"],
            registry=self.registry,
        )
        # The model's score for the positive class, by true class (auc): positives are actual == positive class.
        self.score = Histogram(
            SCORE,
            "The model's score for the positive class per labelled answer, by true class.",
            ["model", "version", "actual"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            DURATION,
            "Client-side duration of user requests, as the user waits for them.",
            ["model", "version", "code"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
