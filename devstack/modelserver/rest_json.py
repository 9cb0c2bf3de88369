"""TF Serving's REST JSON formats (tensorflow_serving/util/json_tensor.cc), on NumPy arrays.

Predict accepts the row format (``instances``: one element per example,
batched along a new first dimension) and the columnar format (``inputs``: the
tensors as they are) and answers ``predictions`` or ``outputs`` to match.
Classify and regress take ``examples`` (JSON objects turned into tf.Example
features) with an optional shared ``context``.  The error messages are TF
Serving's, so a client that handles the real server handles this one.
Everything here is pure: no TensorFlow, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from devstack.modelserver import dtypes
from devstack.modelserver.status import Code, ServingError, invalid_argument

_FLOAT32_MAX_INT = (1 << 24) - 1
_FLOAT64_MAX_INT = (1 << 53) - 1
_INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "uint8": (0, (1 << 8) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
}
_ERROR_VALUE_CHARS = 256


class Format(enum.Enum):
    ROW = "instances"
    COLUMNAR = "inputs"


# A tf.Example feature before it becomes a proto: kind is "float", "int64" or "bytes".
Feature = tuple[str, list[Any]]
ExampleFeatures = dict[str, Feature]


def value_text(value: Any) -> str:
    """JsonValueToString, bounded: error messages quote the offending value but never the whole body."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _ERROR_VALUE_CHARS else text[:_ERROR_VALUE_CHARS] + "..."


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def parse_document(body: bytes) -> dict[str, Any]:
    """Parse a request body; TF Serving only accepts a top-level JSON object."""
    if not body.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body.decode("utf-8"))  # rapidjson reads UTF-8 only; no BOM sniffing
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: Nesting is too deep.") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {value_text(document)} Is not object")
    return document


def signature_name(document: Mapping[str, Any]) -> str:
    value = document.get("signature_name", "")
    if not isinstance(value, str):
        raise invalid_argument(
            f"JSON Value: {value_text(document)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return value


def _is_base64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_base64(value: Any) -> bytes:
    if not _is_base64_object(value):
        raise invalid_argument(f"JSON Value: {value_text(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _type_error(value: Any, dtype: dtypes.DType) -> ServingError:
    return invalid_argument(
        f"JSON Value: {value_text(value)} Type: {json_type(value)} is not of expected type: {dtype.name}"
    )


def _lossy(value: Any, target: str) -> ServingError:
    return invalid_argument(f"Cannot convert JSON value: {value_text(value)} to {target} without loss of precision.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _lossless_decimal(value: int | float, max_int: int, max_value: float) -> bool:
    if isinstance(value, int):
        return abs(value) <= max_int
    return not math.isfinite(value) or abs(value) <= max_value


def convert_scalar(value: Any, dtype: dtypes.DType) -> Any:
    """AddValueToTensor: one JSON leaf to one element of ``dtype``, or TF Serving's error."""
    name = dtype.name
    if name in ("float", "half"):
        if not _is_number(value):
            raise _type_error(value, dtype)
        if not _lossless_decimal(value, _FLOAT32_MAX_INT, float(np.finfo(np.float32).max)):
            raise _lossy(value, "float")
        return float(value)
    if name == "double":
        if not _is_number(value):
            raise _type_error(value, dtype)
        if not _lossless_decimal(value, _FLOAT64_MAX_INT, float(np.finfo(np.float64).max)):
            raise _lossy(value, "double")
        return float(value)
    if name in _INT_RANGES:
        low, high = _INT_RANGES["int32" if name in ("int16", "int8", "uint8") else name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if name == "string":
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict):
            return _decode_base64(value)
        raise _type_error(value, dtype)
    if name == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError(Code.UNIMPLEMENTED, f"Conversion of JSON Value: {value_text(value)} to type: {name}")


def dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape: the shape implied by following the first element down."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: dtypes.DType, out: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {value_text(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(value, dict) and dtype.name != "string":
            raise _type_error(value, dtype)
        out.append(convert_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def tensor_from_json(value: Any, dtype: dtypes.DType) -> npt.NDArray[Any]:
    """One JSON value (scalar or nested lists) to a dense array of ``dtype``."""
    shape = dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    if dtype.name == "string":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        array = np.array(flat, dtype=dtype.numpy)
    return array.reshape(shape)


def _status_text(error: ServingError) -> str:
    return f"{error.code.name}: {error.message}"


def _from_instances(document: Mapping[str, Any], inputs: Mapping[str, dtypes.DType]) -> dict[str, npt.NDArray[Any]]:
    instances = document["instances"]
    if not isinstance(instances, list):
        raise invalid_argument(f"JSON Value: {value_text(document)} Excepting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument(f"JSON Value: {value_text(document)} No values in 'instances' array")

    def is_object(value: Any) -> bool:
        return isinstance(value, dict) and not _is_base64_object(value)

    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    objects = is_object(instances[0])
    names = sorted(inputs)
    rows: dict[str, list[npt.NDArray[Any]]] = {name: [] for name in names}

    def add(index: int, name: str, value: Any, context: str) -> None:
        if name not in inputs:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        try:
            tensor = tensor_from_json(value, inputs[name])
        except ServingError as error:
            raise invalid_argument(
                f"Failed to process element: {index}{context} of 'instances' list. Error: {_status_text(error)}"
            ) from None
        if rows[name]:
            first = rows[name][0]
            problem = None
            if first.size != tensor.size:
                problem = f"Expecting tensor size: {first.size} but got: {tensor.size}"
            elif first.shape != tensor.shape:
                problem = f"Expecting shape {_shape_text(first.shape)} but got: {_shape_text(tensor.shape)}"
            if problem:
                raise invalid_argument(
                    f"Failed to process element: {index}{context} of 'instances' list. Error: INVALID_ARGUMENT: "
                    f"{problem}"
                )
        rows[name].append(tensor)

    for index, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            for name, value in element.items():
                add(index, name, value, f" key: {name}")
            if set(element) != set(names):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {value_text(element)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if is_object(element):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            add(index, names[0], element, "")
    return {name: _stack(parts, inputs[name]) for name, parts in rows.items()}


def _stack(parts: list[npt.NDArray[Any]], dtype: dtypes.DType) -> npt.NDArray[Any]:
    if dtype.name == "string":
        stacked = np.empty((len(parts), *parts[0].shape), dtype=object)
        for i, part in enumerate(parts):
            stacked[i] = part
        return stacked
    return np.stack(parts).astype(dtype.numpy, copy=False)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _from_inputs(document: Mapping[str, Any], inputs: Mapping[str, dtypes.DType]) -> dict[str, npt.NDArray[Any]]:
    value = document["inputs"]
    if not isinstance(value, dict) or _is_base64_object(value):
        if len(inputs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        name = next(iter(inputs))
        return {name: tensor_from_json(value, inputs[name])}
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name in sorted(inputs):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = tensor_from_json(value[name], inputs[name])
    return tensors


def predict_inputs(
    document: Mapping[str, Any], inputs: Mapping[str, dtypes.DType], signature: str = ""
) -> tuple[dict[str, npt.NDArray[Any]], Format]:
    """FillPredictRequestFromJson: named input arrays from a predict body, and which format it used."""
    if not inputs:
        raise invalid_argument(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {value_text(document)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        return _from_instances(document, inputs), Format.ROW
    if has_inputs:
        return _from_inputs(document, inputs), Format.COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _scalar_to_json(value: Any, as_bytes: bool) -> Any:
    if isinstance(value, (bytes, bytearray)):
        if as_bytes:
            return {"b64": base64.b64encode(bytes(value)).decode()}
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.floating):
        # Shortest text that round-trips this float32/float64, as TF Serving's WriteDecimal.
        return float(str(value)) if math.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def array_to_json(array: npt.NDArray[Any], as_bytes: bool = False) -> Any:
    flat = [_scalar_to_json(v, as_bytes) for v in np.asarray(array).reshape(-1)]
    if np.ndim(array) == 0:
        return flat[0]
    holder = np.empty(len(flat), dtype=object)
    holder[:] = flat
    return holder.reshape(np.shape(array)).tolist()


def predict_response(outputs: Mapping[str, npt.NDArray[Any]], response_format: Format) -> str:
    """MakeJsonFromTensors: ``predictions`` (row) or ``outputs`` (columnar)."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if response_format is Format.COLUMNAR:
        columns = {name: array_to_json(outputs[name], name.endswith("_bytes")) for name in names}
        body: dict[str, Any] = {"outputs": columns if len(names) > 1 else columns[names[0]]}
        return json.dumps(body, allow_nan=True)
    batch = -1
    for name in names:
        array = outputs[name]
        if np.ndim(array) == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    per_output = {name: array_to_json(outputs[name], name.endswith("_bytes")) for name in names}
    if len(names) == 1:
        predictions: list[Any] = per_output[names[0]]
    else:
        predictions = [{name: per_output[name][i] for name in names} for i in range(batch)]
    return json.dumps({"predictions": predictions}, allow_nan=True)


def _feature_error(name: str, value: Any) -> ServingError:
    return invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")


def _add_to_feature(value: Any, name: str, feature: Feature | None) -> Feature:
    """AddValueToFeature: JSON types decide the feature kind; a feature cannot mix kinds."""
    if value is None or isinstance(value, list):
        raise _feature_error(name, value)
    kind: str
    item: Any
    if isinstance(value, bool):
        kind, item = "int64", int(value)
    elif isinstance(value, dict):
        if not _is_base64_object(value):
            raise _feature_error(name, value)
        kind, item = "bytes", _decode_base64(value)
    elif isinstance(value, str):
        kind, item = "bytes", value.encode()
    elif isinstance(value, float):
        if not _lossless_decimal(value, _FLOAT32_MAX_INT, float(np.finfo(np.float32).max)):
            raise _lossy(value, "float")
        kind, item = "float", value
    elif isinstance(value, int):
        if value > _INT_RANGES["int64"][1]:
            raise invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
        if value < _INT_RANGES["int64"][0]:
            raise _feature_error(name, value)
        kind, item = "int64", value
    else:
        raise _feature_error(name, value)
    if feature is not None and feature[0] != kind:
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {feature[0]}")
    if feature is None:
        return (kind, [item])
    feature[1].append(item)
    return feature


def example_from_json(value: Any) -> ExampleFeatures:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    features: ExampleFeatures = {}
    for name, content in value.items():
        feature: Feature | None = None
        for item in content if isinstance(content, list) else [content]:
            feature = _add_to_feature(item, name, feature)
        features[name] = feature if feature is not None else ("float", [])
    return features


def classify_examples(
    document: Mapping[str, Any], method: str = "classify"
) -> tuple[ExampleFeatures | None, list[ExampleFeatures]]:
    """FillClassifyRegressRequestFromJson: optional ``context`` and the list of ``examples``."""
    context = example_from_json(document["context"]) if "context" in document else None
    if "examples" not in document:
        raise invalid_argument(
            f"JSON Value: {value_text(document)} When method is {method}, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {value_text(document)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {value_text(document)} 'examples' value is an empty array")
    return context, [example_from_json(example) for example in examples]


def classification_response(classes: list[list[tuple[str, float]]]) -> str:
    """MakeJsonFromClassificationResult: per example, a list of [label, score] pairs."""
    if not classes:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    results = [[[label, float(str(np.float32(score)))] for label, score in example] for example in classes]
    return json.dumps({"results": results}, allow_nan=True)


def error_body(message: str) -> str:
    return json.dumps({"error": message})
