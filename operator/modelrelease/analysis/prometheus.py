"""Measure metrics with Prometheus' instant-query API (prometheus-api-client).

Why prometheus-api-client in a thread: it is the client the project already
depends on, it imports only ``requests`` (no pandas unless asked), and its
``custom_query`` does exactly one ``/api/v1/query``.  It is synchronous, so
each query runs in a worker thread and the event loop (kopf's handlers, other
releases) never blocks on Prometheus.  The threads are one bounded pool for
the whole operator (``QUERY_WORKERS``), not the default executor shared with
everything else: with 1,000 releases judged at once the queries queue there,
at most that many in flight against Prometheus, and each provider's HTTP
connection pool (``requests``' 10 per host) keeps a connection for every
worker.

Failures never raise out of ``measure``: an unreachable Prometheus, a query
Prometheus rejects, an answer without ``data.result`` (a proxy, another
service on the port), an empty result, NaN or several series all become
``Unmeasured`` with the reason, so the check is inconclusive, never a pass.
A ratio whose denominator is 0 is a measurement (no events in the window),
so a pooled metric counts the window and waits for requests.
The reason goes into the release's status, so whatever the server answered
is cut to ``MESSAGE_LIMIT`` characters there.
Retries are kept to one quick retry: the next analysis interval is the real
retry, and a timer blocked for many seconds helps nobody.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from modelrelease.analysis.context import TemplateValues, UnsafeValueError
from modelrelease.analysis.provider import Measurement, Observation, Unmeasured
from modelrelease.analysis.rendering import TemplateError, render
from modelrelease.analysis.templates import QueryPlan, plan_for
from modelrelease.api.spec import MetricSpec
from modelrelease.metrics import PROMETHEUS_QUERIES

QUERY_WORKERS = 8
"""Prometheus queries in flight at once, over all releases and Prometheus servers."""
QUERIES = ThreadPoolExecutor(max_workers=QUERY_WORKERS, thread_name_prefix="prometheus-query")

MESSAGE_LIMIT = 300
"""Longest reason kept for an unmeasured metric; it is stored in status (etcd objects are limited in size)."""


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying so when it was cut."""
    if len(text) <= limit:
        return text
    marker = " ...(cut)"
    return text[: limit - len(marker)] + marker


class _NoValue(Exception):
    """A query gave no single finite number; the message says why."""


class PrometheusProvider:
    """A ``MetricProvider`` backed by one Prometheus server."""

    def __init__(self, address: str, timeout_seconds: int = 5) -> None:
        self.address = address.rstrip("/")
        self._client = PrometheusConnect(
            url=self.address,
            timeout=timeout_seconds,
            retry=Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
        )

    def close(self) -> None:
        """Close the provider's HTTP connections (the analyzer evicts providers it no longer uses)."""
        session = getattr(self._client, "_session", None)
        if session is not None:
            session.close()

    async def measure(self, metric: MetricSpec, values: TemplateValues, at: datetime | None = None) -> Observation:
        try:
            plan = plan_for(metric)
            rendered = _render_plan(plan, values)
        except (TemplateError, UnsafeValueError, ValueError) as refused:
            return Unmeasured(bounded(f"query not sent: {refused}"))
        try:
            if plan.grouped is not None:
                return await self._grouped(plan, rendered["grouped"], at)
            if plan.is_ratio:
                return await self._ratio(plan, rendered, at)
            return await self._single(rendered, at)
        except _NoValue as missing:
            return Unmeasured(bounded(str(missing)))

    async def _single(self, rendered: dict[str, str], at: datetime | None) -> Measurement:
        value_query = self._value(rendered["value"], "query", at)
        if "samples" not in rendered:
            return Measurement(value=await value_query)
        value, samples = await asyncio.gather(value_query, self._value(rendered["samples"], "sample count", at))
        return Measurement(value=value, samples=_as_count(samples))

    async def _grouped(self, plan: QueryPlan, promql: str, at: datetime | None) -> Measurement:
        """One count per value of ``plan.by`` (a histogram's buckets), keyed ``a|b`` when it names two labels."""
        result = await self._query(promql, "grouped", at)
        if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
            raise _NoValue(f"the grouped query returned {type(result).__name__}, not a vector")
        if not result:
            raise _NoValue("no data: the grouped query matched no series in the window")
        labels = (plan.by or "").split(",")
        counts: dict[str, float] = {}
        for item in result:
            key = "|".join(str(item.get("metric", {}).get(label, "")) for label in labels)
            label = plan.by or ""
            try:
                number = float(item.get("value", [None, None])[1])
            except (TypeError, ValueError) as error:
                raise _NoValue(f"the grouped query returned a non-number for {label}={key!r}") from error
            if not math.isfinite(number):
                raise _NoValue(f"the grouped query returned {number} for {label}={key!r}")
            counts[key] = counts.get(key, 0.0) + number
        series = tuple(sorted(counts.items()))
        total = sum(counts.values())
        return Measurement(value=math.nan, samples=_as_count(total), series=series)

    async def _ratio(self, plan: QueryPlan, rendered: dict[str, str], at: datetime | None) -> Measurement:
        queries = [
            self._value(rendered["numerator"], "numerator", at),
            self._value(rendered["denominator"], "denominator", at),
        ]
        if "samples" in rendered:
            queries.append(self._value(rendered["samples"], "sample count", at))
        numbers = await asyncio.gather(*queries)
        numerator, denominator = numbers[0], numbers[1]
        samples = _as_count(numbers[2] if len(numbers) > 2 else denominator)
        # No events in the window is a count too (zero requests, added to the stage's pool as such);
        # its value is NaN, which a threshold reads as no value.
        return Measurement(
            value=numerator / denominator if denominator > 0 else math.nan,
            samples=samples,
            numerator=numerator,
            denominator=denominator,
            proportion=plan.proportion,
        )

    async def _value(self, promql: str, role: str, at: datetime | None = None) -> float:
        return _single_number(await self._query(promql, role, at), role)

    async def _query(self, promql: str, role: str, at: datetime | None) -> Any:
        """The ``data.result`` of one instant query evaluated at ``at`` (None: Prometheus' now)."""
        params: dict[Any, Any] = {"time": f"{at.timestamp():.3f}"} if at is not None else {}
        try:
            loop = asyncio.get_running_loop()
            PROMETHEUS_QUERIES.inc()
            result = await loop.run_in_executor(QUERIES, self._client.custom_query, promql, params)
        except requests.exceptions.JSONDecodeError as error:  # 200, but not JSON
            raise _NoValue(f"Prometheus answered the {role} query with something unreadable: {error}") from error
        except requests.exceptions.RequestException as error:
            raise _NoValue(f"Prometheus unreachable at {self.address}: {type(error).__name__}") from error
        except PrometheusApiClientException as error:  # not 200; its message holds the whole body
            raise _NoValue(f"Prometheus refused the {role} query: {bounded(str(error))}") from error
        except (KeyError, TypeError, ValueError) as error:  # 200 and JSON, but no data.result in it
            raise _NoValue(
                f"Prometheus answered the {role} query without data.result ({type(error).__name__}: {error})"
            ) from error
        return result


def _render_plan(plan: QueryPlan, values: TemplateValues) -> dict[str, str]:
    parts = {
        "value": plan.value,
        "numerator": plan.numerator,
        "denominator": plan.denominator,
        "samples": plan.samples,
        "grouped": plan.grouped,
    }
    return {role: render(text, values) for role, text in parts.items() if text is not None}


def _single_number(result: Any, role: str) -> float:
    """The one number an instant query returned (vector of one series, or a scalar)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        raw = result[1]  # scalar: [timestamp, "value"]
    elif isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
        raw = result[0].get("value", [None, None])[1]
    elif isinstance(result, list) and not result:
        hint = " (if zero is a valid count, end the query with `or vector(0)`)" if role == "numerator" else ""
        raise _NoValue(f"no data: the {role} query matched no series in the window{hint}")
    elif isinstance(result, list):
        raise _NoValue(f"the {role} query returned {len(result)} series; aggregate it to one number (sum(...))")
    else:
        raise _NoValue(f"the {role} query returned {type(result).__name__}, not a number")
    try:
        number = float(raw)
    except (TypeError, ValueError) as error:
        raise _NoValue(f"the {role} query returned {raw!r}, not a number") from error
    if not math.isfinite(number):
        raise _NoValue(f"the {role} query returned {raw} (too few observations in the window?)")
    return number


def _as_count(value: float) -> int:
    """``increase()`` extrapolates, so counts come back fractional; the judges want whole events."""
    return max(0, round(value))
