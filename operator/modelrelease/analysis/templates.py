"""The built-in metric templates, and the query plan every metric kind reduces to.

Why ratio-shaped: every built-in except latency is a count of good (or bad)
events over a count of events, queried as two numbers rather than one
division in PromQL.  The denominator is then the sample count that
``minRequests`` is checked against, and the pair lets the judge put a
confidence bound on the candidate's value and on its difference from the
stable version (see ``judge``).  Latency, a quantile, comes with a separate
request count for the same reason.

Labels: TF Serving's own series carry ``model_name`` and ``status`` from the
server and ``version``, ``release``, ``namespace`` from the pod (added by the
chart's scrape relabelling), so the health templates select all of them.  The
outcome and feedback counters come from a feedback pipeline (devstack's
traffic generator, or the user's own) that knows only the model and the
version that answered, so the quality templates select ``model`` and
``version``.

Where "none happened" is a valid count (no errors, no correct answers) the
numerator ends in ``or vector(0)``: ``sum`` over no series is an empty result,
and an empty numerator is read as *no data*, which would hold a release
whose candidate simply made no errors.  Denominators never get the fallback:
no events at all must stay *no data*.

The built-ins, for version ``v`` over the window ``[{{interval}}]`` (``W``):

``tfserving-error-rate`` (a proportion; lower is better)
    ``sum(increase(:tensorflow:serving:request_count{<v>,status!="OK"}[W])) or vector(0)``
    over ``sum(increase(:tensorflow:serving:request_count{<v>}[W]))``.
    ``status`` holds canonical codes (OK, INVALID_ARGUMENT, NOT_FOUND, ...),
    so client errors count: a model that rejects its callers' inputs is failing.
``tfserving-latency-p99`` (seconds; judged as the share of slow requests)
    ``sum by (le) (increase(:tensorflow:serving:request_latency_bucket{<v>}[W]))``:
    the window's histogram, one count per bucket boundary.  TF Serving's
    histogram is in microseconds (``scale`` 1e-6 turns a boundary into
    seconds, so ``max: 0.25`` means 250 ms).  ``p99 <= max`` is judged as
    "at most 1% of requests slower than ``max``", counted from the buckets
    (``slow_share``), pooled and sequential like errors; the p99 shown is
    interpolated from the same buckets, as ``histogram_quantile`` does,
    for display only.  ``compareToBaseline.maxIncrease`` is judged the same
    way against the stable version's pooled p99 plus the increase.
``accuracy`` (a proportion)
    ``model_prediction_outcomes_total{outcome="correct"}`` over all outcomes of the version.
``precision`` / ``recall`` for ``positiveClass`` ``c`` (proportions)
    true positives ``{predicted="c",actual="c"}`` over ``{predicted="c"}``
    (precision) or ``{actual="c"}`` (recall).
``f1`` for ``positiveClass`` ``c``
    ``2*TP / (count{predicted="c"} + count{actual="c"})``, which equals
    ``2PR/(P+R)``; samples are the outcomes that involve ``c``
    (``TP + FP + FN``).  Not a binomial proportion, so judged on its value.
``mae`` / ``mse`` (a regression model's mean absolute / squared error; lower is better)
    ``sum(increase(model_prediction_absolute_error_sum{<v>}[W]))`` over
    ``sum(increase(model_prediction_absolute_error_count{<v>}[W]))``, and the
    same with ``model_prediction_squared_error``.  A regression feedback
    pipeline exports, per model and version, Prometheus summaries (or
    histograms) observing ``|prediction - truth|`` and ``(prediction - truth)^2``
    for each labelled answer, which yield exactly these ``_sum``/``_count``
    series (docs/metrics.md).  Pooled over the stage, judged on the pooled mean.
``auc`` for ``positiveClass`` ``c`` (Mann-Whitney over bucketed scores)
    ``sum by (actual, le) (increase(model_prediction_score_bucket{<v>}[W]))``:
    the histogram of the model's score for the positive class, per true
    class; answers with ``actual="c"`` are the positives, all others the
    negatives (``distribution.auc_from_buckets``).
``prediction-drift`` (label-free)
    ``sum by (predicted) (increase(model_predictions_total{<v>}[W]))``: the
    answers per predicted class, compared with the stable version's on the
    same traffic; ``max`` bounds their total variation distance
    (``distribution.total_variation``).
``feedback-positive-rate`` (a proportion)
    ``model_feedback_total{feedback="positive"}`` over all feedback of the version.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrelease.analysis.context import checked
from modelrelease.api.spec import BUILTIN_TEMPLATES, MetricSpec

_W = "[{{interval}}]"
_SERVING = 'model_name="{{model}}",version="{{version}}",namespace="{{namespace}}",release="{{release}}"'
_QUALITY = 'model="{{model}}",version="{{version}}"'


@dataclass(frozen=True)
class QueryPlan:
    """PromQL (still with placeholders) that measures one metric.

    Either ``value`` (one number) or ``numerator``/``denominator`` (value is
    their quotient).  ``samples`` counts the events the value rests on; for a
    ratio without it, the denominator is the count.  ``proportion`` says the
    ratio is successes over trials, so binomial confidence bounds apply.
    ``grouped`` is one query returning a count per value of the label ``by``
    (a histogram's ``le``); ``scale`` turns ``le`` into the metric's unit and
    ``quantile`` says which quantile the metric's bounds are about.
    """

    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    samples: str | None = None
    proportion: bool = False
    grouped: str | None = None
    by: str | None = None
    scale: float = 1.0
    quantile: float | None = None

    @property
    def is_ratio(self) -> bool:
        return self.numerator is not None and self.denominator is not None


def _count(metric: str, selector: str) -> str:
    return f"sum(increase({metric}{{{selector}}}{_W}))"


def _count_raw(metric: str, selector: str) -> str:
    return f"increase({metric}{{{selector}}}{_W})"


def _zero_if_none(expression: str) -> str:
    return f"({expression} or vector(0))"


def _outcomes(extra: str = "") -> str:
    return _count("model_prediction_outcomes_total", _QUALITY + extra)


def _builtin(template: str, positive_class: str | None) -> QueryPlan:
    if template == "tfserving-error-rate":
        requests = ":tensorflow:serving:request_count"
        return QueryPlan(
            numerator=_zero_if_none(_count(requests, _SERVING + ',status!="OK"')),
            denominator=_count(requests, _SERVING),
            proportion=True,
        )
    if template == "tfserving-latency-p99":
        buckets = f"sum by (le) (increase(:tensorflow:serving:request_latency_bucket{{{_SERVING}}}{_W}))"
        return QueryPlan(grouped=buckets, by="le", scale=1e-6, quantile=0.99)
    if template == "accuracy":
        return QueryPlan(
            numerator=_zero_if_none(_outcomes(',outcome="correct"')), denominator=_outcomes(), proportion=True
        )
    if template == "feedback-positive-rate":
        feedback = "model_feedback_total"
        return QueryPlan(
            numerator=_zero_if_none(_count(feedback, _QUALITY + ',feedback="positive"')),
            denominator=_count(feedback, _QUALITY),
            proportion=True,
        )
    if template in ("mae", "mse"):
        summary = "model_prediction_absolute_error" if template == "mae" else "model_prediction_squared_error"
        return QueryPlan(
            numerator=_zero_if_none(_count(f"{summary}_sum", _QUALITY)),
            denominator=_count(f"{summary}_count", _QUALITY),
        )
    if template == "prediction-drift":
        return QueryPlan(
            grouped=f"sum by (predicted) ({_count_raw('model_predictions_total', _QUALITY)})", by="predicted"
        )
    if template == "auc":
        if positive_class is None:
            raise ValueError("template auc needs positiveClass")
        checked("positive_class", positive_class)
        scores = _count_raw("model_prediction_score_bucket", _QUALITY)
        return QueryPlan(grouped=f"sum by (actual, le) ({scores})", by="actual,le")
    if template in ("precision", "recall", "f1"):
        if positive_class is None:
            raise ValueError(f"template {template} needs positiveClass")
        label = checked("positive_class", positive_class)
        true_positives = _zero_if_none(_outcomes(f',predicted="{label}",actual="{label}"'))
        predicted = _zero_if_none(_outcomes(f',predicted="{label}"'))
        actual = _zero_if_none(_outcomes(f',actual="{label}"'))
        if template == "precision":
            return QueryPlan(numerator=true_positives, denominator=_outcomes(f',predicted="{label}"'), proportion=True)
        if template == "recall":
            return QueryPlan(numerator=true_positives, denominator=_outcomes(f',actual="{label}"'), proportion=True)
        return QueryPlan(
            numerator=f"2 * {true_positives}",
            denominator=f"{predicted} + {actual}",
            samples=f"{predicted} + {actual} - {true_positives}",
        )
    raise ValueError(f"{template!r} is not a built-in template: use one of {', '.join(BUILTIN_TEMPLATES)}")


def plan_for(metric: MetricSpec) -> QueryPlan:
    """The query plan for a metric of any kind; ValueError for a template or class the operator cannot use."""
    if metric.template is not None:
        return _builtin(metric.template, metric.positive_class)
    if metric.ratio is not None:
        return QueryPlan(numerator=metric.ratio.success, denominator=metric.ratio.total, proportion=True)
    if metric.query is not None:
        return QueryPlan(value=metric.query)
    raise ValueError(f"metric {metric.name} sets none of template, query or ratio")
