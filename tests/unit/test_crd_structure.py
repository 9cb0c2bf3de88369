"""The generated CRD is structural and cheap enough for CEL: checked without an API server.

The API server would refuse the CRD for any of these; checking here gives a
clear message in the unit tests, and tests/integration/test_crd_apiserver.py
confirms it on a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelrelease.api import ModelReleaseSpec
from modelrelease.api.crd import crd_manifest, render_crd

Node = dict[str, Any]


def _schema() -> Node:
    schema: Node = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Node, path: str = "") -> Iterator[tuple[str, Node]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            if key != "default":
                yield from _all_keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from _all_keys(child)


def test_no_refs_or_combinators_remain() -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "definitions", "propertyNames", "const"}
    assert forbidden.isdisjoint(set(_all_keys(_schema())))


def test_every_node_has_a_type_or_preserves_unknown_fields() -> None:
    untyped = [path for path, node in _walk(_schema()) if "type" not in node]
    assert untyped == []


def test_no_object_mixes_properties_with_additional_properties() -> None:
    assert [p for p, n in _walk(_schema()) if "properties" in n and "additionalProperties" in n] == []


def test_only_the_pass_through_fields_preserve_unknown_fields() -> None:
    free = {path for path, node in _walk(_schema()) if node.get("x-kubernetes-preserve-unknown-fields")}
    assert free == {".spec.serving.resources", ".spec.serving.podTemplate"}


def test_every_string_and_list_the_user_writes_is_bounded_for_cel_cost() -> None:
    spec = _schema()["properties"]["spec"]
    unbounded = [
        path
        for path, node in _walk(spec, ".spec")
        if (node.get("type") == "string" and "maxLength" not in node and "enum" not in node)
        or (node.get("type") == "array" and "maxItems" not in node)
        or (node.get("type") == "object" and "additionalProperties" in node and "maxProperties" not in node)
    ]
    assert unbounded == []


def test_cross_field_rules_are_cel_with_messages() -> None:
    rules = [(path, rule) for path, node in _walk(_schema()) for rule in node.get("x-kubernetes-validations", [])]
    assert all(rule.get("message") for _, rule in rules)
    where = {path for path, _ in rules}
    for expected in (
        "",  # metadata.name leaves room for derived names
        ".spec",  # holdAt
        ".spec.stages",  # unique names, order, weights
        ".spec.stages[]",  # one kind, match on weight
        ".spec.traffic",  # router blocks
        ".spec.analysis.interval",  # >= 1s
        ".spec.analysis.metrics",  # unique names
        ".spec.analysis.metrics[]",  # one kind, threshold, positiveClass
        ".spec.analysis.metrics[].query",  # placeholders
        ".spec.analysis.metrics[].ratio.success",
        ".spec.analysis.metrics[].ratio.total",
        ".spec.serving.args",  # managed flags
    ):
        assert expected in where, f"no CEL rule at {expected or '(root)'}"


def test_template_is_an_enum_of_the_builtins() -> None:
    template = _schema()["properties"]["spec"]["properties"]["analysis"]["properties"]["metrics"]["items"]
    assert template["properties"]["template"]["enum"][:2] == ["tfserving-error-rate", "tfserving-latency-p99"]


def test_spec_defaults_are_the_models_defaults() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    smallest = ModelReleaseSpec.model_validate(
        {"model": {"name": "m", "basePath": "/m", "version": 1}, "serving": {"image": "i"}}
    ).model_dump(by_alias=True, exclude_none=True)
    for field in ("stages", "traffic", "analysis", "rollback", "holdAt", "paused", "revisionHistoryLimit"):
        assert spec[field]["default"] == smallest[field], field


def test_status_has_no_defaults_so_the_server_never_invents_state() -> None:
    status = _schema()["properties"]["status"]
    assert [path for path, node in _walk(status, ".status") if "default" in node] == []


def test_status_subresource_short_names_and_printer_columns() -> None:
    crd = crd_manifest()
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == "modelreleases.modelrelease.io"
    assert crd["spec"]["names"]["shortNames"] == ["mr", "mrel"]
    assert crd["spec"]["scope"] == "Namespaced"
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Stable": ".status.stableVersion",
        "Candidate": ".status.candidateVersion",
        "Stage": ".status.stage.name",
        "Weight": ".status.stage.actualWeight",
        "Age": ".metadata.creationTimestamp",
    }


@pytest.mark.parametrize("column", ["Phase", "Stable", "Candidate", "Stage", "Weight"])
def test_printer_columns_point_at_status_fields_that_exist(column: str) -> None:
    version = crd_manifest()["spec"]["versions"][0]
    path = next(c["jsonPath"] for c in version["additionalPrinterColumns"] if c["name"] == column)
    node = version["schema"]["openAPIV3Schema"]
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    assert node["type"] in ("string", "integer")


def test_yaml_is_block_style_and_reads_back_to_the_manifest() -> None:
    text = render_crd()
    assert text.startswith("# Generated from operator/modelrelease/api by `make crds`")
    assert "{" not in text.split("openAPIV3Schema")[0]  # no flow-style mappings in the header part
    assert yaml.safe_load(text) == crd_manifest()
