"""Every validation rule of the ModelRelease spec, as a user meets it: the field named, what is allowed said."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelrelease.api import InvalidRelease, ModelReleaseSpec, parse_release, parse_spec

MINIMAL: dict[str, Any] = {
    "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
    "serving": {"image": "tensorflow/serving:2.18.0"},
}


def _merged(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in patch.items()}}
    return copy.deepcopy(patch)


def spec(**patch: Any) -> ModelReleaseSpec:
    return parse_spec(_merged(MINIMAL, patch))


def problems(**patch: Any) -> list[str]:
    with pytest.raises(InvalidRelease) as refused:
        spec(**patch)
    return refused.value.problems


def only_problem(**patch: Any) -> str:
    found = problems(**patch)
    assert len(found) == 1, found
    return found[0]


def stages(*items: dict[str, Any]) -> dict[str, Any]:
    return {"stages": list(items)}


def metric(**fields: Any) -> dict[str, Any]:
    return {"analysis": {"metrics": [{"name": "m", **fields}]}}


# --- model and serving


def test_version_zero_is_refused_naming_spec_model_version() -> None:
    assert only_problem(model={"version": 0}) == "spec.model.version: Input should be greater than or equal to 1"


def test_version_one_is_the_lowest_accepted() -> None:
    assert spec(model={"version": 1}).model.version == 1


def test_model_name_with_quotes_is_refused_so_it_cannot_reach_promql() -> None:
    message = only_problem(model={"name": 'digits"}'})
    assert message.startswith("spec.model.name: ")
    assert "letters, digits" in message


def test_relative_base_path_is_refused_and_urls_are_accepted() -> None:
    assert only_problem(model={"basePath": "models/digits"}).startswith("spec.model.basePath: ")
    assert spec(model={"basePath": "gs://bucket/models/digits"}).model.base_path == "gs://bucket/models/digits"


@pytest.mark.parametrize(
    "path",
    [
        '/x"}config{name:"evil"base_path:"/tmp/evil',
        "/models/digits\nmodel_config_list {}",
        "/models\\digits",
        "/models/\tdigits",
        "/models/digits\x7f",
        "/models/digits\x85",
        "gs://bucket/models digits",
    ],
    ids=["quote", "newline", "backslash", "tab", "del", "c1-control", "space"],
)
def test_base_path_that_cannot_be_a_path_is_refused_naming_the_field(path: str) -> None:
    message = only_problem(model={"basePath": path})
    assert message.startswith("spec.model.basePath: ")
    assert "without spaces, quotes, backslashes or control characters" in message


@pytest.mark.parametrize(
    "path", ["/models/digits", "s3://bucket/team-a/digits_v2", "hdfs://namenode:8020/m/x@1", "/modèles/it's+(1)"]
)
def test_base_paths_real_storage_uses_are_accepted(path: str) -> None:
    assert spec(model={"basePath": path}).model.base_path == path


def test_image_with_spaces_is_refused() -> None:
    assert "without spaces" in only_problem(serving={"image": "tensorflow/serving 2.18"})


def test_missing_image_is_refused_naming_it() -> None:
    manifest = copy.deepcopy(MINIMAL)
    del manifest["serving"]["image"]
    with pytest.raises(InvalidRelease) as refused:
        parse_spec(manifest)
    assert refused.value.problems == ["spec.serving.image: Field required"]


def test_unknown_field_is_refused_not_ignored() -> None:
    assert only_problem(stage=[]) == "spec.stage: Extra inputs are not permitted"


@pytest.mark.parametrize(
    "flag", ["--port=9000", "--model_name=x", "-model_base_path=/x", "--rest_api_port", "--model_config_file=/c"]
)
def test_serving_args_may_not_set_flags_the_operator_manages(flag: str) -> None:
    message = only_problem(serving={"args": ["--enable_batching", flag]})
    assert message.startswith("spec.serving.args[1] sets -")
    assert "which the operator manages" in message


def test_serving_args_with_other_flags_are_kept_in_order() -> None:
    assert spec(serving={"args": ["--enable_batching", "--portable=1"]}).serving.args == [
        "--enable_batching",
        "--portable=1",
    ]


def test_zero_replicas_is_refused() -> None:
    assert only_problem(serving={"replicas": 0}).startswith("spec.serving.replicas: ")


# --- traffic routers


@pytest.mark.parametrize(("router", "block"), [("gatewayApi", "gatewayApi"), ("istio", "istio")])
def test_router_without_its_own_block_is_refused(router: str, block: str) -> None:
    assert only_problem(traffic={"router": router}) == f"spec.traffic.{block} is required when router is {router}"


def test_router_with_its_own_block_is_accepted() -> None:
    traffic = spec(traffic={"router": "gatewayApi", "gatewayApi": {"httpRoute": "digits"}}).traffic
    assert traffic.gateway_api is not None and traffic.gateway_api.http_route == "digits"


def test_a_block_for_a_router_not_chosen_is_refused() -> None:
    message = only_problem(traffic={"istio": {"virtualService": "digits"}})
    assert message == "spec.traffic.istio is only allowed when router is istio (router is replicas)"


def test_unknown_router_is_refused_listing_the_routers() -> None:
    message = only_problem(traffic={"router": "linkerd"})
    assert message.startswith("spec.traffic.router: ")
    assert "'replicas', 'gatewayApi' or 'istio'" in message


# --- stages


def test_weight_above_100_is_refused_naming_the_stage() -> None:
    message = only_problem(**stages({"name": "a", "weight": 101}))
    assert message == "spec.stages[0].weight: Input should be less than or equal to 100"


def test_negative_weight_is_refused() -> None:
    assert only_problem(**stages({"name": "a", "weight": -1})).startswith("spec.stages[0].weight: ")


def test_weights_may_stay_level_but_not_fall() -> None:
    assert [s.weight for s in spec(**stages({"name": "a", "weight": 20}, {"name": "b", "weight": 20})).stages] == [
        20,
        20,
    ]
    message = only_problem(
        **stages({"name": "a", "weight": 50}, {"name": "m", "weight": 50}, {"name": "b", "weight": 10})
    )
    assert message.startswith("spec.stages[2].weight is 10, below 50 in stages[1]")
    assert "must not decrease" in message


def test_duplicate_stage_names_are_refused_naming_the_second() -> None:
    message = only_problem(**stages({"name": "canary", "weight": 10}, {"name": "canary", "weight": 20}))
    assert message == "spec.stages[1].name repeats 'canary' (stages[0]): stage names must be unique"


@pytest.mark.parametrize("name", ["Canary", "canary_1", "-canary", "canary-", "a" * 64, ""])
def test_stage_names_must_be_dns_labels(name: str) -> None:
    assert only_problem(**stages({"name": name, "weight": 10})).startswith("spec.stages[0].name: ")


def test_stage_with_two_kinds_is_refused_naming_them() -> None:
    message = only_problem(**stages({"name": "a", "weight": 10, "mirror": 100}))
    assert message == (
        "spec.stages[0] sets mirror and weight: a stage is exactly one kind: set exactly one of smoke, mirror or weight"
    )


def test_stage_with_no_kind_is_refused() -> None:
    assert "sets none of them" in only_problem(**stages({"name": "a", "duration": "1m"}))


def test_match_on_a_mirror_stage_is_refused() -> None:
    message = only_problem(**stages({"name": "a", "mirror": 50, "match": [{"headers": {"x-cohort": "b"}}]}))
    assert message.startswith("spec.stages[0].match is only allowed on a weight stage")


GATEWAY = {"traffic": {"router": "gatewayApi", "gatewayApi": {"httpRoute": "digits"}}}


def test_match_on_a_weight_stage_is_an_ab_cohort() -> None:
    ab = {"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}]}
    stage = spec(**stages(ab), **GATEWAY).stages[0]
    assert stage.match is not None and stage.match[0].headers == {"x-cohort": "b"}


def test_replicas_router_refuses_a_shadow_stage_naming_the_field_and_the_routers_that_can() -> None:
    message = only_problem(**stages({"name": "smoke", "smoke": {}}, {"name": "shadow", "mirror": 100}))
    assert message == (
        "spec.stages[1].mirror is not possible with traffic.router replicas (the default), which cannot copy "
        "requests: use traffic.router gatewayApi or istio"
    )


def test_replicas_router_refuses_a_cohort_stage_naming_the_field_and_the_routers_that_can() -> None:
    message = only_problem(**stages({"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}]}))
    assert message.startswith("spec.stages[0].match is not possible with traffic.router replicas")
    assert message.endswith("use traffic.router gatewayApi or istio")


@pytest.mark.parametrize(
    "traffic",
    [
        {},
        {"router": "replicas"},
        {"router": "gatewayApi", "gatewayApi": {"httpRoute": "digits"}},
        {"router": "istio", "istio": {"virtualService": "digits"}},
    ],
)
def test_default_stages_are_valid_for_every_router(traffic: dict[str, Any]) -> None:
    assert [s.name for s in spec(traffic=traffic).stages] == ["smoke", "canary-10", "canary-50", "full"]


def test_shadow_and_cohort_stages_are_accepted_by_the_mesh_routers() -> None:
    shadow_and_ab = stages(
        {"name": "shadow", "mirror": 100}, {"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}]}
    )
    assert len(spec(**shadow_and_ab, **GATEWAY).stages) == 2
    istio = {"traffic": {"router": "istio", "istio": {"virtualService": "digits"}}}
    assert len(spec(**shadow_and_ab, **istio).stages) == 2


def test_empty_match_list_and_empty_headers_are_refused() -> None:
    assert only_problem(**stages({"name": "ab", "weight": 5, "match": []})).startswith("spec.stages[0].match: ")
    assert only_problem(**stages({"name": "ab", "weight": 5, "match": [{"headers": {}}]})).startswith(
        "spec.stages[0].match[0].headers: "
    )


def test_header_names_must_be_http_tokens() -> None:
    message = only_problem(**stages({"name": "ab", "weight": 5, "match": [{"headers": {"x cohort": "b"}}]}))
    assert message.startswith("spec.stages[0].match[0].headers['x cohort'] is not an HTTP header name")


def test_mirror_of_zero_percent_is_refused() -> None:
    assert only_problem(**stages({"name": "shadow", "mirror": 0})).startswith("spec.stages[0].mirror: ")


@pytest.mark.parametrize(
    "order",
    [
        [{"name": "c", "weight": 10}, {"name": "s", "smoke": {}}],
        [{"name": "c", "weight": 10}, {"name": "m", "mirror": 100}],
        [{"name": "m", "mirror": 100}, {"name": "s", "smoke": {}}],
    ],
)
def test_stages_run_smoke_then_mirror_then_weight(order: list[dict[str, Any]]) -> None:
    message = only_problem(stages=order)
    assert message.startswith("spec.stages[1] is a ")
    assert "stages run smoke first, then mirror, then weight" in message


def test_empty_stage_list_is_refused() -> None:
    assert only_problem(stages=[]).startswith("spec.stages: ")


def test_stage_duration_must_be_a_go_duration_within_a_year() -> None:
    assert "is not a duration" in only_problem(**stages({"name": "a", "weight": 1, "duration": "10 minutes"}))
    assert "at most 8760h" in only_problem(**stages({"name": "a", "weight": 1, "duration": "9000h"}))
    assert spec(**stages({"name": "a", "weight": 1, "duration": "1h30m"})).stages[0].duration == "1h30m"


def test_smoke_min_accuracy_is_a_share() -> None:
    assert only_problem(**stages({"name": "s", "smoke": {"minAccuracy": 95}})).startswith(
        "spec.stages[0].smoke.minAccuracy: "
    )


# --- holdAt


def test_hold_at_naming_a_stage_is_accepted() -> None:
    assert spec(holdAt="canary-50").hold_at == "canary-50"


def test_hold_at_naming_no_stage_is_refused_listing_the_stages() -> None:
    message = only_problem(holdAt="canary-99")
    assert (
        message
        == "spec.holdAt is 'canary-99', which is not a stage: use '' or one of smoke, canary-10, canary-50, full"
    )


# --- analysis


def test_failure_limit_below_one_is_refused() -> None:
    assert only_problem(analysis={"failureLimit": 0}).startswith("spec.analysis.failureLimit: ")


def test_interval_below_one_second_is_refused() -> None:
    assert (
        only_problem(analysis={"interval": "500ms"})
        == "spec.analysis.interval: '500ms' is too short: at least 1s is allowed"
    )
    assert spec(analysis={"interval": "1s"}).analysis.interval == "1s"


def test_interval_that_is_not_a_duration_is_refused_with_examples() -> None:
    assert "e.g. 30s, 10m" in only_problem(analysis={"interval": "30"})


def test_prometheus_address_must_be_an_http_url() -> None:
    assert only_problem(analysis={"prometheus": {"address": "prometheus:9090"}}).startswith(
        "spec.analysis.prometheus.address: "
    )


# --- metrics


def test_metric_with_template_and_query_is_refused() -> None:
    message = only_problem(**metric(template="accuracy", query="up", min=0.9))
    assert message == (
        "spec.analysis.metrics[0] sets template and query: a metric is exactly one kind: "
        "set exactly one of template, query or ratio"
    )


def test_metric_with_no_kind_is_refused() -> None:
    assert "sets none of them" in only_problem(**metric(min=0.9))


def test_unknown_template_is_refused_listing_the_builtins() -> None:
    message = only_problem(**metric(template="accuracy-v2", min=0.9))
    assert message.startswith("spec.analysis.metrics[0].template: 'accuracy-v2' is not a built-in template")
    assert "tfserving-error-rate" in message and "feedback-positive-rate" in message


@pytest.mark.parametrize(
    "template", ["tfserving-error-rate", "tfserving-latency-p99", "accuracy", "mae", "feedback-positive-rate"]
)
def test_every_builtin_template_without_a_class_is_accepted(template: str) -> None:
    assert spec(**metric(template=template, max=1.0)).analysis.metrics[0].template == template


@pytest.mark.parametrize("template", ["precision", "recall", "f1"])
def test_class_templates_need_a_positive_class(template: str) -> None:
    assert only_problem(**metric(template=template, min=0.9)).startswith(
        "spec.analysis.metrics[0].positiveClass is required"
    )
    assert spec(**metric(template=template, min=0.9, positiveClass="7")).analysis.metrics[0].positive_class == "7"


def test_positive_class_is_refused_where_nothing_reads_it() -> None:
    message = only_problem(**metric(template="accuracy", min=0.9, positiveClass="7"))
    assert (
        message
        == "spec.analysis.metrics[0].positiveClass is only allowed with the precision, recall, f1, auc templates"
    )


@pytest.mark.parametrize("placeholder", ["{{pod}}", "{{ model }}", "{{Model}}", "{{model}", "{{", "}}"])
def test_query_with_an_unknown_placeholder_is_refused(placeholder: str) -> None:
    message = only_problem(**metric(query=f"sum(up{{job=~'{placeholder}'}})", max=1))
    assert message.startswith("spec.analysis.metrics[0].query: uses ")
    assert (
        "only the placeholders {{model}}, {{version}}, {{namespace}}, {{release}}, {{interval}} may be used" in message
    )


def test_query_with_every_allowed_placeholder_is_accepted() -> None:
    query = (
        'sum(rate(x{model="{{model}}",version="{{version}}",namespace="{{namespace}}",r="{{release}}"}[{{interval}}]))'
    )
    assert spec(**metric(query=query, max=1)).analysis.metrics[0].query == query


def test_ratio_with_an_unknown_placeholder_names_the_ratio_part() -> None:
    message = only_problem(
        **metric(ratio={"success": "sum(ok{m='{{model}}'})", "total": "sum(all{p='{{pod}}'})"}, min=0.5)
    )
    assert message.startswith("spec.analysis.metrics[0].ratio.total: uses {{pod}}")


def test_blank_query_is_refused() -> None:
    assert (
        only_problem(**metric(query="   ", max=1))
        == "spec.analysis.metrics[0].query: is empty: write a PromQL expression"
    )


def test_metric_without_threshold_is_refused() -> None:
    assert "has no threshold" in only_problem(**metric(template="mae"))


def test_compare_to_baseline_alone_is_a_threshold_but_needs_a_bound() -> None:
    assert (
        spec(**metric(template="accuracy", compareToBaseline={"maxDrop": 0.02})).analysis.metrics[0].compare_to_baseline
    )
    message = only_problem(**metric(template="accuracy", compareToBaseline={}))
    assert message == "spec.analysis.metrics[0].compareToBaseline sets no bound: set maxDrop, maxIncrease or both"


def test_min_above_max_is_refused() -> None:
    message = only_problem(**metric(template="accuracy", min=0.9, max=0.5))
    assert message == "spec.analysis.metrics[0].min is 0.9, greater than max 0.5: min must not be greater than max"


def test_duplicate_metric_names_are_refused() -> None:
    message = only_problem(
        analysis={
            "metrics": [{"name": "m", "template": "mae", "max": 1}, {"name": "m", "template": "accuracy", "min": 0.5}]
        }
    )
    assert message == "spec.analysis.metrics[1].name repeats 'm' (metrics[0]): metric names must be unique"


def test_negative_min_requests_is_refused() -> None:
    assert only_problem(**metric(template="mae", max=1, minRequests=-1)).startswith(
        "spec.analysis.metrics[0].minRequests: "
    )


# --- the whole object


def test_problems_in_several_stages_are_all_reported() -> None:
    found = problems(**stages({"name": "a", "weight": 101}, {"name": "B", "weight": 5}))
    assert [line.split(":")[0] for line in found] == ["spec.stages[0].weight", "spec.stages[1].name"]


def test_release_name_must_leave_room_for_derived_names() -> None:
    with pytest.raises(InvalidRelease) as refused:
        parse_release({"metadata": {"name": "d" * 51}, "spec": MINIMAL})
    assert refused.value.problems[0].startswith("metadata.name is 'ddd")
    assert "at most 50 characters" in refused.value.problems[0]
    assert parse_release({"metadata": {"name": "d" * 50}, "spec": MINIMAL}).metadata["name"] == "d" * 50


def test_release_name_starting_with_a_digit_is_refused() -> None:
    with pytest.raises(InvalidRelease) as refused:
        parse_release({"metadata": {"name": "2digits"}, "spec": MINIMAL})
    assert "starting with a letter" in refused.value.problems[0]
