"""The golden-set ConfigMap is parsed exactly, and every malformation is named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelrelease.serving import GOLDEN_KEY, GoldenSet, GoldenSetError


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "digits",
        "signature": "serving_default",
        "input": "pixels",
        "instances": [[0.0, 0.5, 1.0], [1.0, 0.25, 0.0]],
        "labels": [3, 7],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def configmap(doc: dict[str, Any]) -> dict[str, str]:
    return {GOLDEN_KEY: json.dumps(doc)}


def test_a_well_formed_golden_set_keeps_rows_labels_and_names() -> None:
    golden = GoldenSet.from_configmap_data(configmap(document()))
    assert golden.model == "digits"
    assert golden.signature == "serving_default"
    assert golden.input == "pixels"
    assert golden.output == "classes"
    assert golden.instances == ((0.0, 0.5, 1.0), (1.0, 0.25, 0.0))
    assert golden.labels == (3, 7)


def test_signature_defaults_to_serving_default_and_output_can_be_named() -> None:
    golden = GoldenSet.from_configmap_data(configmap(document(signature=None, output="labels")))
    assert golden.signature == "serving_default"
    assert golden.output == "labels"


def test_string_labels_are_accepted() -> None:
    assert GoldenSet.from_configmap_data(configmap(document(labels=["cat", "dog"]))).labels == ("cat", "dog")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"other.json": "{}"}, "no key 'golden.json'"),
        ({GOLDEN_KEY: "{not json"}, "not valid JSON"),
        ({GOLDEN_KEY: "[1, 2]"}, "must be a JSON object"),
        (configmap(document(model=None)), "'model' must be a non-empty string"),
        (configmap(document(input="")), "'input' must be a non-empty string"),
        (configmap(document(instances=[])), "'instances' must be a non-empty list"),
        (configmap(document(instances="abc")), "'instances' must be a non-empty list"),
        (configmap(document(instances=[[1.0, 2.0, 3.0], "row"])), "instances[1] must be a non-empty list"),
        (configmap(document(instances=[[1.0, 2.0, 3.0], [1.0, "x", 3.0]])), "instances[1] holds something"),
        (configmap(document(instances=[[1.0, 2.0, 3.0], [1.0, True, 3.0]])), "instances[1] holds something"),
        (configmap(document(instances=[[1.0, 2.0, 3.0], [1.0, 2.0]])), "instances[1] has 2 values"),
        (configmap(document(labels=None)), "'labels' must be a non-empty list"),
        (configmap(document(labels=[3, 1.5])), "labels[1] must be an integer or a string"),
        (configmap(document(labels=[3, None])), "labels[1] must be an integer or a string"),
        (configmap(document(labels=[3])), "2 instances but 1 labels"),
    ],
)
def test_a_malformed_configmap_is_refused_with_the_field_named(data: dict[str, str], expected: str) -> None:
    with pytest.raises(GoldenSetError) as refused:
        GoldenSet.from_configmap_data(data)
    assert expected in str(refused.value)


def test_non_finite_numbers_are_refused() -> None:
    data = {GOLDEN_KEY: '{"model": "m", "input": "x", "instances": [[NaN]], "labels": [1]}'}
    with pytest.raises(GoldenSetError, match=r"instances\[0\] holds something that is not a finite number"):
        GoldenSet.from_configmap_data(data)
