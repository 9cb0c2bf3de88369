"""Templates render per version, and nothing but validated values ever reaches PromQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelrelease.analysis import AnalysisContext, TemplateError, TemplateValues, UnsafeValueError, plan_for, render
from modelrelease.analysis.context import promql_duration
from modelrelease.api.spec import BUILTIN_TEMPLATES, CLASS_TEMPLATES, MetricSpec

VALUES = TemplateValues(model="digits", version=2, namespace="ml", release="digits", interval="30s")


def test_every_placeholder_is_substituted() -> None:
    text = 'x{model="{{model}}",version="{{version}}",namespace="{{namespace}}",release="{{release}}"}[{{interval}}]'
    assert render(text, VALUES) == 'x{model="digits",version="2",namespace="ml",release="digits"}[30s]'


def test_candidate_and_stable_get_their_own_version() -> None:
    context = AnalysisContext("digits", "ml", "digits", "1m", candidate_version=3, baseline_version=2)
    text = 'x{version="{{version}}"}[{{interval}}]'
    assert render(text, context.values_for(3)) == 'x{version="3"}[1m]'
    assert render(text, context.values_for(2)) == 'x{version="2"}[1m]'


@pytest.mark.parametrize(
    "text", ['x{version="{{verison}}"}', "x{{model}", 'x{a="{{ model }}"}', "{{model}}}}", "sum(x) {{"]
)
def test_unknown_or_unbalanced_placeholders_are_refused(text: str) -> None:
    with pytest.raises(TemplateError, match="only"):
        render(text, VALUES)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", 'digits"} or vector(1) or x{a="'),
        ("model", "digits\n"),
        ("model", "dig its"),
        ("model", ""),
        ("model", "a" * 64),
        ("namespace", "ML"),
        ("namespace", 'ml",x="1'),
        ("release", "digits}"),
        ("release", "-digits"),
        ("interval", "30s] or vector(1) #"),
        ("interval", "1.5m"),
        ("interval", "30"),
    ],
)
def test_values_that_could_change_the_query_are_refused(field: str, value: str) -> None:
    fields = {"model": "digits", "version": 2, "namespace": "ml", "release": "digits", "interval": "30s"}
    fields[field] = value
    with pytest.raises(UnsafeValueError, match=field):
        TemplateValues(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_must_be_a_positive_integer(version: int) -> None:
    with pytest.raises(UnsafeValueError, match="version"):
        TemplateValues("digits", version, "ml", "digits", "30s")


def test_a_positive_class_that_could_break_out_of_its_label_is_refused() -> None:
    metric = MetricSpec.model_construct(name="p", template="precision", positive_class='3"}) or vector(1', min=0.9)
    with pytest.raises(UnsafeValueError, match="positive_class"):
        plan_for(metric)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [("30s", "30s"), ("1.5m", "90s"), ("500ms", "500ms"), ("1h30m", "5400s"), (timedelta(seconds=2), "2s")],
)
def test_go_durations_become_prometheus_ranges(interval: str | timedelta, expected: str) -> None:
    assert promql_duration(interval) == expected


def builtin(template: str) -> MetricSpec:
    positive = "3" if template in CLASS_TEMPLATES else None
    return MetricSpec(name="m", template=template, positive_class=positive, max=1.0)


@pytest.mark.parametrize("template", BUILTIN_TEMPLATES)
def test_every_builtin_renders_to_placeholder_free_promql_with_a_sample_count(template: str) -> None:
    plan = plan_for(builtin(template))
    queries = [q for q in (plan.value, plan.numerator, plan.denominator, plan.samples, plan.grouped) if q is not None]
    rendered = [render(query, VALUES) for query in queries]
    assert all('version="2"' in query and "[30s]" in query for query in rendered)
    assert plan.samples is not None or plan.is_ratio or plan.grouped is not None, "min_requests needs a count"


def test_error_rate_counts_non_ok_canonical_codes_for_this_release_and_version() -> None:
    plan = plan_for(builtin("tfserving-error-rate"))
    assert plan.numerator is not None and plan.denominator is not None
    numerator = render(plan.numerator, VALUES)
    assert 'status!="OK"' in numerator
    assert 'model_name="digits"' in numerator and 'namespace="ml"' in numerator and 'release="digits"' in numerator
    assert numerator.endswith("or vector(0))"), "no errors is a count of zero, not missing data"
    assert "vector(0)" not in plan.denominator, "no requests at all must stay missing data"
    assert plan.proportion


def test_latency_p99_counts_each_bucket_in_the_window_in_tf_servings_microseconds() -> None:
    plan = plan_for(builtin("tfserving-latency-p99"))
    assert plan.value is None and plan.grouped is not None
    assert plan.grouped.startswith("sum by (le) (increase(:tensorflow:serving:request_latency_bucket")
    assert (plan.by, plan.scale, plan.quantile) == ("le", 1e-6, 0.99)
    assert not plan.proportion


def test_mae_and_mse_read_the_summaries_the_data_plane_exports() -> None:
    for template, summary in (("mae", "model_prediction_absolute_error"), ("mse", "model_prediction_squared_error")):
        plan = plan_for(builtin(template))
        assert plan.numerator is not None and f"{summary}_sum{{" in plan.numerator
        assert plan.denominator is not None and f"{summary}_count{{" in plan.denominator


def test_precision_and_recall_count_true_positives_over_predicted_and_actual_positives() -> None:
    precision = plan_for(builtin("precision"))
    recall = plan_for(builtin("recall"))
    assert precision.numerator == recall.numerator
    assert precision.numerator is not None and 'predicted="3",actual="3"' in precision.numerator
    assert precision.denominator is not None and 'predicted="3"}' in precision.denominator
    assert recall.denominator is not None and 'actual="3"}' in recall.denominator


def test_user_ratio_and_query_metrics_keep_their_text() -> None:
    ratio = plan_for(MetricSpec.model_validate({"name": "r", "ratio": {"success": "a", "total": "b"}, "min": 0.5}))
    query = plan_for(MetricSpec(name="q", query="up", max=1))
    assert (ratio.numerator, ratio.denominator, ratio.proportion) == ("a", "b", True)
    assert (query.value, query.is_ratio, query.samples) == ("up", False, None)
