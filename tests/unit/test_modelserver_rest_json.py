"""TF Serving's REST JSON formats on NumPy: request parsing, responses, and the exact error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devstack.modelserver import dtypes, rest_json
from devstack.modelserver.status import Code, ServingError

PIXELS = {"pixels": dtypes.FLOAT}


def _error(call: object) -> ServingError:
    assert callable(call)
    with pytest.raises(ServingError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b'{"instances": [1', "JSON Parse error: Expecting ',' delimiter at offset: 16"),
        (b"[1]", "JSON Value: [1] Is not object"),
        (b"\xff\xfe{}", "JSON Parse error: Invalid encoding in string. at offset: 0"),
    ],
)
def test_unparsable_bodies_are_invalid_argument(body: bytes, message: str) -> None:
    error = _error(lambda: rest_json.parse_document(body))
    assert (error.code, error.message) == (Code.INVALID_ARGUMENT, message)


def test_row_format_batches_instances_along_a_new_first_dimension() -> None:
    document = {"instances": [[0.5] * 64, [0.25] * 64]}
    inputs, response_format = rest_json.predict_inputs(document, PIXELS)
    assert response_format is rest_json.Format.ROW
    assert inputs["pixels"].shape == (2, 64)
    assert inputs["pixels"].dtype == np.float32


def test_row_format_with_named_objects() -> None:
    document = {"instances": [{"pixels": [1.0, 2.0]}, {"pixels": [3.0, 4.0]}]}
    inputs, _ = rest_json.predict_inputs(document, PIXELS)
    np.testing.assert_array_equal(inputs["pixels"], [[1, 2], [3, 4]])


def test_columnar_format_keeps_the_tensor_as_sent() -> None:
    inputs, response_format = rest_json.predict_inputs({"inputs": {"pixels": [[1, 2, 3]]}}, PIXELS)
    assert response_format is rest_json.Format.COLUMNAR
    assert inputs["pixels"].shape == (1, 3)


def test_ragged_instances_report_the_element_and_sizes() -> None:
    error = _error(lambda: rest_json.predict_inputs({"instances": [[1.0, 2.0], [1.0]]}, PIXELS))
    assert error.message == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"
    )


def test_wrong_json_type_names_value_type_and_dtype() -> None:
    error = _error(lambda: rest_json.predict_inputs({"inputs": [["a"]]}, PIXELS))
    assert error.message == 'JSON Value: "a" Type: String is not of expected type: float'


def test_booleans_are_not_numbers() -> None:
    error = _error(lambda: rest_json.predict_inputs({"inputs": [True]}, PIXELS))
    assert error.message == "JSON Value: true Type: True is not of expected type: float"


def test_integers_too_large_for_float32_are_lossy() -> None:
    error = _error(lambda: rest_json.predict_inputs({"inputs": [16777217]}, PIXELS))
    assert error.message == "Cannot convert JSON value: 16777217 to float without loss of precision."


def test_nesting_deeper_than_the_first_element_says_so() -> None:
    error = _error(lambda: rest_json.predict_inputs({"inputs": [1.0, [2.0]]}, PIXELS))
    assert error.message == "Encountered list at unexpected level: 1 expected < 1"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "Missing 'inputs' or 'instances' key"),
        ({"instances": []}, "JSON Value: {\"instances\":[]} No values in 'instances' array"),
        ({"instances": 3}, "JSON Value: {\"instances\":3} Excepting 'instances' to be an list/array"),
        ({"instances": [{"x": [1.0]}]}, "JSON object: does not have named input: x"),
    ],
)
def test_request_shape_errors_use_tf_serving_messages(document: dict[str, object], message: str) -> None:
    assert _error(lambda: rest_json.predict_inputs(document, PIXELS)).message == message


def test_both_keys_are_rejected() -> None:
    error = _error(lambda: rest_json.predict_inputs({"inputs": [1.0], "instances": [1.0]}, PIXELS))
    assert "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist" in error.message


def test_signature_name_must_be_a_string() -> None:
    error = _error(lambda: rest_json.signature_name({"signature_name": 1}))
    assert error.message.endswith("not formatted correctly. 'signature_name' key must be a string value.")


def test_strings_accept_base64_objects() -> None:
    inputs, _ = rest_json.predict_inputs({"inputs": [{"b64": "aGk="}, "yo"]}, {"text": dtypes.STRING})
    assert inputs["text"].tolist() == [b"hi", b"yo"]


def test_row_response_with_several_outputs_is_a_list_of_objects() -> None:
    outputs = {"classes": np.array([3, 1], np.int64), "scores": np.array([[0.1, 0.9], [0.7, 0.3]], np.float32)}
    body = json.loads(rest_json.predict_response(outputs, rest_json.Format.ROW))
    assert body == {"predictions": [{"classes": 3, "scores": [0.1, 0.9]}, {"classes": 1, "scores": [0.7, 0.3]}]}


def test_columnar_response_with_one_output_is_the_bare_tensor() -> None:
    body = json.loads(rest_json.predict_response({"y": np.array([[1.5]], np.float32)}, rest_json.Format.COLUMNAR))
    assert body == {"outputs": [[1.5]]}


def test_float32_outputs_are_written_in_their_shortest_form() -> None:
    text = rest_json.predict_response({"y": np.array([0.1, 2.0], np.float32)}, rest_json.Format.ROW)
    assert text == '{"predictions": [0.1, 2.0]}'


def test_inconsistent_batch_sizes_cannot_be_written_as_rows() -> None:
    outputs = {"a": np.zeros(2), "b": np.zeros(3)}
    error = _error(lambda: rest_json.predict_response(outputs, rest_json.Format.ROW))
    assert error.message == "Tensor name: b has inconsistent batch size: 3 expecting: 2"


def test_classify_examples_become_typed_features() -> None:
    context, examples = rest_json.classify_examples(
        {"context": {"lang": "en"}, "examples": [{"pixels": [0.5, 1.5], "id": 7, "flag": True}]}
    )
    assert context == {"lang": ("bytes", [b"en"])}
    assert examples == [{"pixels": ("float", [0.5, 1.5]), "id": ("int64", [7]), "flag": ("int64", [1])}]


def test_classify_feature_cannot_mix_kinds() -> None:
    error = _error(lambda: rest_json.classify_examples({"examples": [{"x": [1.5, "a"]}]}))
    assert error.message == "Unexpected element type in feature: x expecting type: float"


def test_classify_requires_examples() -> None:
    error = _error(lambda: rest_json.classify_examples({"signature_name": "classify"}))
    assert error.message.endswith("When method is classify, key 'examples' is expected and was not found")


def test_classification_response_lists_label_score_pairs() -> None:
    body = json.loads(rest_json.classification_response([[("0", 0.25), ("1", 0.75)]]))
    assert body == {"results": [[["0", 0.25], ["1", 0.75]]]}
