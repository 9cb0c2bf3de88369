"""Answers from "Prometheus" that are not usable make a check inconclusive, with a short reason, never an exception.

A proxy, a wrong port or a broken Prometheus can answer 200 without
``data.result`` or an error page of any size.  Before, the first raised
KeyError out of the pass (the release looped in back-off) and the second
went whole into the release's status.  A real HTTP server on 127.0.0.1
answers those bodies; a real Prometheus gives a real, long refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import prometheus
from devstack.testing import RecordedRequests, canned_http_server
from modelrelease.analysis import AnalysisContext, PrometheusProvider, Unmeasured, evaluate
from modelrelease.analysis.prometheus import MESSAGE_LIMIT
from modelrelease.api.spec import MetricSpec

ERROR_RATE = MetricSpec(name="error-rate", template="tfserving-error-rate", max=0.01)
CONTEXT = AnalysisContext(
    model="digits", namespace="ml", release="digits", interval="30s", candidate_version=2, baseline_version=1
)


@pytest.fixture(scope="module")
def answers() -> Iterator[RecordedRequests]:
    with canned_http_server("prometheus-lookalike") as server:
        yield server


def check(address: str, metric: MetricSpec = ERROR_RATE) -> tuple[str, str]:
    """One analysis check of one metric through the provider: (verdict, message)."""
    [result] = asyncio.run(evaluate([metric], CONTEXT, PrometheusProvider(address)))
    return result.verdict, result.message


@pytest.mark.parametrize(
    "body",
    [b'{"status": "success"}', b'{"status": "success", "data": {}}', b'{"data": null}', b"[]"],
    ids=["no-data", "no-result", "null-data", "a-list"],
)
def test_a_200_answer_without_data_result_is_inconclusive(answers: RecordedRequests, body: bytes) -> None:
    answers.status, answers.body, answers.content_type = 200, body, "application/json"
    verdict, message = check(answers.address)
    assert verdict == "inconclusive"
    assert "without data.result" in message


def test_a_200_answer_that_is_not_json_is_inconclusive(answers: RecordedRequests) -> None:
    answers.status, answers.body, answers.content_type = 200, b"<html>login</html>", "text/html"
    verdict, message = check(answers.address)
    assert verdict == "inconclusive"
    assert "unreadable" in message


def test_a_huge_error_page_is_cut_to_the_message_limit(answers: RecordedRequests) -> None:
    answers.status, answers.body, answers.content_type = 500, b"<p>" + b"x" * 200_000 + b"</p>", "text/html"
    provider = PrometheusProvider(answers.address)
    observation = asyncio.run(provider.measure(ERROR_RATE, CONTEXT.values_for(2)))
    assert isinstance(observation, Unmeasured)
    assert "HTTP Status Code 500" in observation.reason
    assert len(observation.reason) <= MESSAGE_LIMIT
    verdict, message = check(answers.address)
    assert verdict == "inconclusive"
    assert len(message) <= 2 * MESSAGE_LIMIT  # candidate and baseline reasons at most


@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if prometheus.find_binary() is None:
        pytest.fail("prometheus is not installed: run `make setup`")
    state_dir: Path = tmp_path_factory.mktemp("prometheus")
    with prometheus.serve(state_dir) as address:
        yield address


def test_a_long_refusal_from_a_real_prometheus_is_cut_to_the_message_limit(real_prometheus: str) -> None:
    unknown = "no_such_function_" + "x" * 3000
    metric = MetricSpec(name="made-up", query=f"{unknown}(up)", max=1.0)
    provider = PrometheusProvider(real_prometheus)
    observation = asyncio.run(provider.measure(metric, CONTEXT.values_for(2)))
    assert isinstance(observation, Unmeasured)
    assert "refused" in observation.reason and "HTTP Status Code 400" in observation.reason
    assert len(observation.reason) <= MESSAGE_LIMIT
