"""Metric providers (Prometheus) and the judges that turn values into verdicts.

``evaluate(metrics, context, provider)`` is the entry point: it renders each
metric's PromQL for the candidate and the stable version (``rendering``,
``templates``), measures it (``provider``, ``prometheus``) and judges it
(``judge``, ``stats``) into ``MetricResult``s for the engine.
"""

from modelrelease.analysis.context import AnalysisContext, TemplateValues, UnsafeValueError, promql_duration
from modelrelease.analysis.evaluate import evaluate
from modelrelease.analysis.judge import DEFAULT_MIN_SAMPLES, judge
from modelrelease.analysis.prometheus import PrometheusProvider
from modelrelease.analysis.provider import Measurement, MetricProvider, Observation, Unmeasured
from modelrelease.analysis.rendering import TemplateError, render
from modelrelease.analysis.templates import QueryPlan, plan_for

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "AnalysisContext",
    "Measurement",
    "MetricProvider",
    "Observation",
    "PrometheusProvider",
    "QueryPlan",
    "TemplateError",
    "TemplateValues",
    "Unmeasured",
    "UnsafeValueError",
    "evaluate",
    "judge",
    "plan_for",
    "promql_duration",
    "render",
]
