"""The model server as a process, over gRPC with the real tensorflow_serving.apis stubs.

Three servers, as the operator deploys them: one per ``specific`` version
config (v2 alone, the corrupt v4 alone) and one holding versions 1-5 at once,
which is the cheap way to check every version's state on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from devstack import models
from devstack.modelserver import testing

STATE = get_model_status_pb2.ModelVersionStatus.State.Name
LOADABLE = (1, 2, 3, 5)


def _start(tmp: Path, name: str, versions: list[int], root: Path) -> testing.RunningServer:
    config = tmp / f"{name}.config"
    config.write_text(testing.specific_versions_config("digits", root / "digits", versions))
    return testing.start_server(
        [f"--model_config_file={config}", "--max_num_load_retries=0", "--file_system_poll_wait_seconds=0"],
        tmp / f"{name}.log",
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, testing.RunningServer]]:
    root = models.ensure_models()
    tmp = tmp_path_factory.mktemp("modelserver-grpc")
    started = {
        "all": _start(tmp, "all", [1, 2, 3, 4, 5], root),
        "v2": _start(tmp, "v2", [2], root),
        "v4": _start(tmp, "v4", [4], root),
    }
    try:
        testing.wait_for_states(started["all"], "digits", [1, 2, 3, 4, 5])
        testing.wait_for_states(started["v2"], "digits", [2])
        testing.wait_for_states(started["v4"], "digits", [4])
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def stub(servers: dict[str, testing.RunningServer]) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(servers["all"].channel())


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    inputs, labels = models.load_holdout()
    return inputs, labels


def _predict_request(inputs: np.ndarray, version: int | None = None, signature: str = "") -> Any:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(inputs, dtype=tf.float32))
    return request


def _direct_classes(version: int, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(models.version_dir(version)))
    return loaded.signatures["serving_default"](pixels=tf.constant(inputs))["classes"].numpy()


@pytest.mark.parametrize("version", LOADABLE)
def test_loadable_versions_are_available_with_ok_status(
    servers: dict[str, testing.RunningServer], version: int
) -> None:
    status = testing.model_status(servers["all"].channel(), "digits", version).model_version_status
    assert [(s.version, STATE(s.state), s.status.error_code) for s in status] == [(version, "AVAILABLE", 0)]


def test_corrupt_version_ends_with_the_load_error(servers: dict[str, testing.RunningServer]) -> None:
    for server in (servers["all"], servers["v4"]):
        (status,) = testing.model_status(server.channel(), "digits", 4).model_version_status
        assert STATE(status.state) == "END"
        assert status.status.error_code == 15  # DATA_LOSS, as TF Serving's SavedModel reader reports it
        assert "Can't parse" in status.status.error_message
        assert str(models.version_dir(4) / "saved_model.pb") in status.status.error_message
        assert server.alive()


def test_specific_policy_serves_exactly_the_listed_version(servers: dict[str, testing.RunningServer]) -> None:
    channel = servers["v2"].channel()
    listed = testing.model_status(channel, "digits").model_version_status
    assert [(s.version, STATE(s.state)) for s in listed] == [(2, "AVAILABLE")]
    with pytest.raises(grpc.RpcError) as missing:
        testing.model_status(channel, "digits", 1)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "Could not find version 1 of model digits"


def test_predict_matches_the_savedmodel_called_directly(stub: Any, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    import tensorflow as tf

    inputs, labels = holdout
    for version in LOADABLE:
        response = stub.Predict(_predict_request(inputs, version), timeout=30)
        served = tf.make_ndarray(response.outputs["classes"])
        np.testing.assert_array_equal(served, _direct_classes(version, inputs))
        accuracy = float(np.mean(served == labels))
        assert accuracy == pytest.approx(models.read_metrics(version)["accuracy"])
        assert tf.make_ndarray(response.outputs["scores"]).shape == (len(inputs), 10)
        assert response.model_spec.name == "digits"
        assert response.model_spec.version.value == version
        assert response.model_spec.signature_name == "serving_default"


def test_predict_without_version_uses_the_newest_available(stub: Any, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    response = stub.Predict(_predict_request(holdout[0][:3]), timeout=30)
    assert response.model_spec.version.value == 5


def test_classify_agrees_with_predict(stub: Any, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    import tensorflow as tf

    inputs = holdout[0][:50]
    for version in LOADABLE:
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "digits"
        request.model_spec.signature_name = "classify"
        request.model_spec.version.value = version
        for row in inputs:
            example = request.input.example_list.examples.add()
            example.features.feature["pixels"].float_list.value.extend(row.tolist())
        response = stub.Classify(request, timeout=30)
        best = [int(max(c.classes, key=lambda cls: cls.score).label) for c in response.result.classifications]
        np.testing.assert_array_equal(best, _direct_classes(version, inputs))
        assert [cls.label for cls in response.result.classifications[0].classes] == [str(d) for d in range(10)]
        assert response.model_spec.version.value == version
        assert response.model_spec.signature_name == "classify"
        assert tf.is_tensor(tf.constant(0))  # TensorFlow stayed importable alongside the stubs


def test_classify_on_the_predict_signature_is_rejected_as_tf_serving_does(stub: Any) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "digits"
    request.input.example_list.examples.add().features.feature["pixels"].float_list.value.extend([0.0] * 64)
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict"
    )


def test_metadata_carries_the_real_signature_defs(stub: Any) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    request.model_spec.version.value = 2
    response = stub.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert list(default.inputs) == ["pixels"]
    assert [d.size for d in default.inputs["pixels"].tensor_shape.dim] == [-1, 64]
    assert set(default.outputs) == {"classes", "scores"}
    assert signatures.signature_def["classify"].method_name == "tensorflow/serving/classify"
    assert response.model_spec.version.value == 2
