"""One loaded SavedModel version, and the Predict / Classify / Regress semantics TF Serving applies to it.

Loading reads saved_model.pb first, as TF Serving's C++ loader does, so that a
missing or torn file fails with the same code and message ("Can't parse ... as
binary proto", DATA_LOSS); only then does ``tf.saved_model.load`` build the
functions.  The SignatureDefs served by GetModelMetadata are the real ones from
the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from devstack.modelserver import dtypes, rest_json
from devstack.modelserver.status import Code, ServingError, from_exception, invalid_argument

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SERVE_TAG = "serve"


@dataclass(frozen=True)
class InputSpec:
    alias: str
    dtype: dtypes.DType
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension


def _input_specs(signature: meta_graph_pb2.SignatureDef) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    for alias, info in signature.inputs.items():
        shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
        specs[alias] = InputSpec(alias, dtypes.from_enum(info.dtype), shape)
    return specs


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "[?]" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def _compatible(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> bool:
    if expected is None:
        return True
    return len(shape) == len(expected) and all(e < 0 or e == s for s, e in zip(shape, expected, strict=True))


def read_meta_graph(directory: Path) -> meta_graph_pb2.MetaGraphDef:
    """The 'serve' MetaGraphDef, with TF Serving's errors for a missing or unparsable SavedModel."""
    pb = directory / "saved_model.pb"
    if not pb.is_file():
        if (directory / "saved_model.pbtxt").is_file():
            raise ServingError(Code.UNIMPLEMENTED, f"{directory}: text SavedModels are not supported by devstack")
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {directory}. Check that "
            "the directory exists and that you have the right permissions for accessing it.",
        )
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(pb.read_bytes())
    except (DecodeError, ValueError, RuntimeError):
        raise ServingError(Code.DATA_LOSS, f"Can't parse {pb} as binary proto") from None
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        "Could not find meta graph def matching supplied tags: { serve }. To inspect available tag-sets in the "
        "SavedModel, please use the SavedModel CLI: `saved_model_cli`",
    )


class Servable:
    """A loaded version.  Thread-safe: TensorFlow functions may be called concurrently."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.meta_graph = read_meta_graph(path)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(self.meta_graph.signature_def)
        try:
            loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
        except Exception as error:
            raise from_exception(error) from None
        self._loaded = loaded  # keeps the variables alive
        self._functions = dict(loaded.signatures)
        self.inputs = {name: _input_specs(sig) for name, sig in self.signature_defs.items()}
        self._warm_up()
        self.loaded_at = time.time()

    def _warm_up(self) -> None:
        """Run each numeric signature once on zeros, so tracing does not land on the first user's latency."""
        for name, specs in self.inputs.items():
            if not specs or any(
                s.shape is None or s.dtype.name == "string" or -1 in s.shape[1:] for s in specs.values()
            ):
                continue
            feeds = {
                alias: tf.zeros([1, *(spec.shape or ())[1:]], dtype=tf.as_dtype(spec.dtype.enum))
                for alias, spec in specs.items()
            }
            try:
                self._call(name, feeds)
            except ServingError as error:
                raise ServingError(error.code, f"Model warmup of signature {name} failed: {error.message}") from None

    def input_dtypes(self, signature_name: str) -> dict[str, dtypes.DType]:
        """For the REST layer: the named inputs of a signature (TF Serving's GetInfoMap)."""
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.inputs:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return {alias: spec.dtype for alias, spec in self.inputs[name].items()}

    def _call(self, signature_name: str, feeds: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
        function = self._functions.get(signature_name)
        if function is None:
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{signature_name}" not found.')
        try:
            results = function(**feeds)
            return {key: value.numpy() for key, value in results.items()}
        except Exception as error:
            raise from_exception(error) from None

    def predict(
        self, signature_name: str, inputs: dict[str, npt.NDArray[Any]], output_filter: list[str] | None = None
    ) -> tuple[str, dict[str, npt.NDArray[Any]]]:
        """RunPredict: validate the request against the signature, run it, return (signature, outputs)."""
        name = signature_name or DEFAULT_SIGNATURE
        signature = self.signature_defs.get(name)
        if signature is None:
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        specs = self.inputs[name]
        sent, wanted = set(inputs), set(specs)
        if len(sent) != len(wanted):
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) "
                f"!= len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        feeds: dict[str, Any] = {}
        for index, alias in enumerate(sorted(inputs)):
            if alias not in specs:
                raise invalid_argument(
                    f"input tensor alias not found in signature: {alias}. Inputs expected to be in the set "
                    f"{{{','.join(sorted(specs))}}}."
                )
            spec, array = specs[alias], inputs[alias]
            sent_dtype = dtypes.name_of_numpy(array.dtype)
            if sent_dtype != spec.dtype.name:
                raise invalid_argument(f"Expects arg[{index}] to be {spec.dtype.name} but {sent_dtype} is provided")
            if not _compatible(array.shape, spec.shape):
                raise invalid_argument(
                    f"input tensor {alias}: shape {_shape_text(array.shape)} is not compatible with the "
                    f"signature's shape {_shape_text(spec.shape)}"
                )
            feeds[alias] = tf.constant(array, dtype=tf.as_dtype(spec.dtype.enum))
        outputs = list(signature.outputs)
        if output_filter:
            seen: set[str] = set()
            for alias in output_filter:
                if alias not in signature.outputs:
                    raise invalid_argument(
                        f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                        f"{{{','.join(sorted(signature.outputs))}}}."
                    )
                if alias in seen:
                    raise invalid_argument(f"duplicate output tensor alias: {alias}")
                seen.add(alias)
            outputs = list(output_filter)
        results = self._call(name, feeds)
        return name, {alias: results[alias] for alias in outputs}

    def _example_signature(
        self, signature_name: str, method: str, kind: str
    ) -> tuple[str, meta_graph_pb2.SignatureDef]:
        name = signature_name or DEFAULT_SIGNATURE
        signature = self.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        if signature.method_name != method:
            raise invalid_argument(
                f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
            )
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if "inputs" not in signature.inputs:
            raise ServingError(Code.FAILED_PRECONDITION, f"No {kind} inputs found in SignatureDef: {signature}")
        return name, signature

    def classify(self, signature_name: str, serialized: list[bytes]) -> tuple[str, list[list[tuple[str, float]]]]:
        """Classify: serialized tf.Examples in, per example a list of (label, score)."""
        name, signature = self._example_signature(signature_name, CLASSIFY_METHOD, "classification")
        if "classes" not in signature.outputs and "scores" not in signature.outputs:
            raise ServingError(
                Code.FAILED_PRECONDITION,
                'Expected classification signature outputs to contain at least one of "classes" or "scores".',
            )
        if not serialized:
            raise invalid_argument("Input is empty.")
        results = self._call(name, {"inputs": tf.constant(serialized, dtype=tf.string)})
        classes, scores = results.get("classes"), results.get("scores")
        for label, tensor in (("classes", classes), ("scores", scores)):
            if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != len(serialized)):
                raise invalid_argument(
                    f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)} for {label}"
                )
        width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
        out: list[list[tuple[str, float]]] = []
        for i in range(len(serialized)):
            row = []
            for c in range(width):
                label = classes[i, c].decode("utf-8", errors="replace") if classes is not None else ""
                row.append((label, float(scores[i, c]) if scores is not None else 0.0))
            out.append(row)
        return name, out

    def regress(self, signature_name: str, serialized: list[bytes]) -> tuple[str, list[float]]:
        name, signature = self._example_signature(signature_name, REGRESS_METHOD, "regression")
        if "outputs" not in signature.outputs:
            raise ServingError(Code.FAILED_PRECONDITION, "No regression outputs found in SignatureDef")
        if not serialized:
            raise invalid_argument("Input is empty.")
        values = self._call(name, {"inputs": tf.constant(serialized, dtype=tf.string)})["outputs"]
        return name, [float(v) for v in np.asarray(values).reshape(-1)]


def _feature_proto(feature: rest_json.Feature) -> feature_pb2.Feature:
    kind, values = feature
    if kind == "float":
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    if kind == "int64":
        return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=values))
    return feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=values))


def example_proto(features: rest_json.ExampleFeatures) -> example_pb2.Example:
    example = example_pb2.Example()
    for name, feature in features.items():
        example.features.feature[name].CopyFrom(_feature_proto(feature))
    return example


def serialize_json_examples(
    context: rest_json.ExampleFeatures | None, examples: list[rest_json.ExampleFeatures]
) -> list[bytes]:
    """Like ExampleListWithContext: context bytes prepended to each example (proto merge semantics)."""
    prefix = example_proto(context).SerializeToString() if context else b""
    return [prefix + example_proto(example).SerializeToString() for example in examples]


def serialized_from_input(request_input: Any) -> list[bytes]:
    """InputToSerializedExampleTensor for a tensorflow.serving.Input proto."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in request_input.example_list.examples]
    if kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        prefix = with_context.context.SerializeToString()
        return [prefix + e.SerializeToString() for e in with_context.examples]
    raise invalid_argument("Input is empty.")
