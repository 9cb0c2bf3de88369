"""The analyzer never sends a query to a Prometheus address the operator did not allow (no SSRF via a release).

A real HTTP listener on 127.0.0.1 stands where a release's author points
``spec.analysis.prometheus.address``; it records every request and answers
like Prometheus, so the control case (the address allowed) shows the
listener does see the analyzer's queries when they are sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from devstack.testing import RecordedRequests, recording_prometheus
from modelrelease.api import parse_spec
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.engine.actions import RunAnalysis
from modelrelease.measure import Analyzer
from modelrelease.policy import PrometheusAllowList

OPERATOR_PROMETHEUS = "http://127.0.0.1:9"  # the discard port: never queried in these tests
CHECK = RunAnalysis(candidate_version=2, baseline_version=1, stage="canary", interval="30s")


@pytest.fixture
def listener() -> Iterator[RecordedRequests]:
    with recording_prometheus() as recorded:
        yield recorded


def release_naming(address: str) -> ModelReleaseSpec:
    return parse_spec(
        {
            "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
            "serving": {"image": "tensorflow/serving:2.18.0"},
            "analysis": {
                "prometheus": {"address": address},
                "metrics": [{"name": "up", "query": "sum(up)", "min": 0.5}],
            },
        }
    )


def test_a_release_naming_a_prometheus_the_operator_did_not_allow_sends_it_nothing(
    listener: RecordedRequests,
) -> None:
    analyzer = Analyzer(OPERATOR_PROMETHEUS)
    result = asyncio.run(analyzer.check("ml", "digits", release_naming(listener.address), CHECK))
    assert listener.paths == []
    assert [m.verdict for m in result.metrics] == ["inconclusive"]
    assert "query not sent" in (result.metrics[0].message or "")


def test_an_allowed_prometheus_is_queried_so_the_listener_does_see_queries(listener: RecordedRequests) -> None:
    analyzer = Analyzer(OPERATOR_PROMETHEUS, PrometheusAllowList.of(OPERATOR_PROMETHEUS, [listener.address]))
    result = asyncio.run(analyzer.check("ml", "digits", release_naming(listener.address), CHECK))
    assert any(path.startswith("/api/v1/query") for path in listener.paths), listener.paths
    assert (result.metrics[0].candidate, result.metrics[0].verdict) == (1.0, "pass")
