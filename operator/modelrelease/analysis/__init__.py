"""Metric providers (Prometheus) and the judges that turn values into verdicts.

``evaluate(metrics, context, provider, previous, confidence)`` runs one
check: it renders each metric's PromQL for the candidate and the stable
version (``rendering``, ``templates``), measures each metric's window
(``provider``, ``prometheus``) and hands the windows to
``judge_check(metrics, confidence, windows, previous, until)`` (``check``),
the pure entry point for "judge this check": pooled counts
(``pooled``), always-valid sequential tests (``sequential``,
``slow_share``) and plain thresholds (``judge``, ``stats``), into
``MetricResult``s for the engine.
"""

from modelrelease.analysis.check import Window, alpha_for, judge_check, judge_metric, kind_of
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
    "Window",
    "alpha_for",
    "evaluate",
    "judge",
    "judge_check",
    "judge_metric",
    "kind_of",
    "plan_for",
    "promql_duration",
    "render",
]
