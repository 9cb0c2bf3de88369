"""The model server as a process, over plain HTTP (REST + Prometheus page) and a malformed-request storm."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from devstack import models
from devstack.modelserver import testing

METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    root = models.ensure_models()
    tmp = tmp_path_factory.mktemp("modelserver-rest")
    config = tmp / "models.config"
    config.write_text(testing.specific_versions_config("digits", root / "digits", [1, 2, 3, 4, 5]))
    monitoring = tmp / "monitoring.config"
    monitoring.write_text(testing.MONITORING_CONFIG)
    running = testing.start_server(
        [f"--model_config_file={config}", f"--monitoring_config_file={monitoring}", "--max_num_load_retries=0"],
        tmp / "server.log",
    )
    try:
        testing.wait_for_states(running, "digits", [1, 2, 3, 4, 5])
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def http(server: testing.RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.rest_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    return models.load_holdout()


def _direct_classes(version: int, inputs: np.ndarray) -> list[int]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(models.version_dir(version)))
    return loaded.signatures["serving_default"](pixels=tf.constant(inputs))["classes"].numpy().tolist()


def test_version_status_is_tf_serving_json(http: httpx.Client) -> None:
    response = http.get("/v1/models/digits/versions/2")
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_model_status_lists_every_version_with_the_failed_load(http: httpx.Client) -> None:
    response = http.get("/v1/models/digits")
    assert response.status_code == 200
    statuses = {s["version"]: s for s in response.json()["model_version_status"]}
    assert sorted(statuses) == ["1", "2", "3", "4", "5"]
    assert statuses["4"]["state"] == "END"
    assert statuses["4"]["status"]["error_code"] == "DATA_LOSS"
    assert "saved_model.pb as binary proto" in statuses["4"]["status"]["error_message"]


def test_readiness_probe_fails_for_a_version_that_is_not_available(http: httpx.Client) -> None:
    response = http.get("/v1/models/digits/versions/4")
    assert response.status_code == 503
    assert response.json()["model_version_status"][0]["state"] == "END"


def test_predict_row_format_matches_the_savedmodel(http: httpx.Client, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    inputs = holdout[0][:40]
    response = http.post("/v1/models/digits/versions/2:predict", json={"instances": inputs.tolist()})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["classes"] for p in predictions] == _direct_classes(2, inputs)
    assert all(len(p["scores"]) == 10 and abs(sum(p["scores"]) - 1) < 1e-4 for p in predictions)


def test_predict_columnar_format_answers_outputs(http: httpx.Client, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    inputs = holdout[0][:7]
    response = http.post("/v1/models/digits/versions/3:predict", json={"inputs": {"pixels": inputs.tolist()}})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert outputs["classes"] == _direct_classes(3, inputs)
    assert np.asarray(outputs["scores"]).shape == (7, 10)


def test_classify_answers_label_score_pairs(http: httpx.Client, holdout: tuple[np.ndarray, np.ndarray]) -> None:
    inputs = holdout[0][:5]
    body = {"signature_name": "classify", "examples": [{"pixels": row.tolist()} for row in inputs]}
    response = http.post("/v1/models/digits/versions/1:classify", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [pair[0] for pair in results[0]] == [str(d) for d in range(10)]
    best = [int(max(row, key=lambda pair: pair[1])[0]) for row in results]
    assert best == _direct_classes(1, inputs)


def test_metadata_lists_the_signatures(http: httpx.Client) -> None:
    response = http.get("/v1/models/digits/versions/5/metadata")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_spec"]["version"] == "5"
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) >= {"serving_default", "classify"}
    assert signatures["serving_default"]["inputs"]["pixels"]["dtype"] == "DT_FLOAT"


def test_unknown_model_is_not_found_with_tf_serving_message(http: httpx.Client) -> None:
    response = http.post("/v1/models/nope:predict", json={"instances": [[0.0] * 64]})
    assert response.status_code == 404
    assert response.json() == {"error": "Servable not found for request: Latest(nope)"}


# --- 1,000 malformed requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    expected: str  # canonical code name
    counted: bool  # whether TF Serving counts it in :tensorflow:serving:request_count
    send: Callable[[httpx.Client, Any, Any], str]


def _rest(method: str, path: str, body: bytes = b"") -> Callable[[httpx.Client, Any, Any], str]:
    def send(http: httpx.Client, _predict: Any, _status: Any) -> str:
        response = http.request(method, path, content=body)
        assert "error" in response.json(), response.text
        return {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 503: "UNAVAILABLE"}.get(response.status_code, "OTHER")

    return send


def _grpc(call: str, build: Callable[[], Any]) -> Callable[[httpx.Client, Any, Any], str]:
    def send(_http: httpx.Client, predict: Any, status: Any) -> str:
        stub = status if call == "GetModelStatus" else predict
        try:
            getattr(stub, call)(build(), timeout=30)
        except grpc.RpcError as error:
            assert error.details(), "an error without a message"
            return str(error.code().name)
        return "OK"

    return send


def _predict(inputs: dict[str, Any], version: int | None = 2, name: str = "digits", **spec: Any) -> Callable[[], Any]:
    def build() -> Any:
        import tensorflow as tf

        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        request.model_spec.signature_name = spec.get("signature", "")
        request.output_filter.extend(spec.get("output_filter", []))
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(value if not isinstance(value, np.ndarray) else tf.make_tensor_proto(value))
        return request

    return build


def _classify(rows: list[list[Any]], signature: str = "classify") -> Callable[[], Any]:
    def build() -> Any:
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "digits"
        request.model_spec.signature_name = signature
        for row in rows:
            request.input.example_list.examples.add().features.feature["pixels"].float_list.value.extend(row)
        return request

    return build


def _tensor_proto(**fields: Any) -> Any:
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in fields.pop("shape")]
    return tensor_pb2.TensorProto(tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **fields)


def _status(name: str, version: int | None = None) -> Callable[[], Any]:
    def build() -> Any:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        return request

    return build


def malformed_cases() -> list[Case]:
    good_row = json.dumps([0.25] * 64)
    predict = "/v1/models/digits/versions/2:predict"
    classify = "/v1/models/digits/versions/2:classify"
    rest = [
        Case("truncated json", "INVALID_ARGUMENT", True, _rest("POST", predict, b'{"instances": [[1,2')),
        Case("not json", "INVALID_ARGUMENT", True, _rest("POST", predict, b"this is not json")),
        Case("empty body", "INVALID_ARGUMENT", True, _rest("POST", predict, b"")),
        Case("top-level array", "INVALID_ARGUMENT", True, _rest("POST", predict, b"[1, 2, 3]")),
        Case("wrong width", "INVALID_ARGUMENT", True, _rest("POST", predict, b'{"instances": [[0.5, 0.5, 0.5]]}')),
        Case(
            "ragged rows",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, f'{{"instances": [{good_row}, [0.5, 0.5]]}}'.encode()),
        ),
        Case("instances not a list", "INVALID_ARGUMENT", True, _rest("POST", predict, b'{"instances": "abc"}')),
        Case("no instances", "INVALID_ARGUMENT", True, _rest("POST", predict, b'{"instances": []}')),
        Case(
            "strings for floats",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, json.dumps({"inputs": [["a"] * 64]}).encode()),
        ),
        Case(
            "booleans for floats",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, json.dumps({"instances": [[True] * 64]}).encode()),
        ),
        Case(
            "objects for floats",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, json.dumps({"instances": [[{"x": 1}] * 64]}).encode()),
        ),
        Case(
            "float overflow",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, json.dumps({"instances": [[1e300] * 64]}).encode()),
        ),
        Case(
            "both keys",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, f'{{"instances": [{good_row}], "inputs": [{good_row}]}}'.encode()),
        ),
        Case(
            "numeric signature name",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, f'{{"signature_name": 5, "instances": [{good_row}]}}'.encode()),
        ),
        Case(
            "unknown signature",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", predict, f'{{"signature_name": "nope", "instances": [{good_row}]}}'.encode()),
        ),
        Case("no tensors", "INVALID_ARGUMENT", True, _rest("POST", predict, b"{}")),
        Case("deep nesting", "INVALID_ARGUMENT", True, _rest("POST", predict, b'{"instances": ' + b"[" * 5000)),
        Case(
            "unknown version",
            "NOT_FOUND",
            True,
            _rest("POST", "/v1/models/digits/versions/99:predict", f'{{"instances": [{good_row}]}}'.encode()),
        ),
        Case(
            "corrupt version",
            "NOT_FOUND",
            True,
            _rest("POST", "/v1/models/digits/versions/4:predict", f'{{"instances": [{good_row}]}}'.encode()),
        ),
        Case(
            "unknown model",
            "NOT_FOUND",
            True,
            _rest("POST", "/v1/models/nope:predict", f'{{"instances": [{good_row}]}}'.encode()),
        ),
        Case(
            "bad version text", "INVALID_ARGUMENT", True, _rest("POST", "/v1/models/digits/versions/x2:predict", b"{}")
        ),
        Case(
            "unknown label", "INVALID_ARGUMENT", True, _rest("POST", "/v1/models/digits/labels/canary:predict", b"{}")
        ),
        Case("unknown verb", "INVALID_ARGUMENT", False, _rest("POST", "/v1/models/digits:explode", b"{}")),
        Case("status of unknown version", "NOT_FOUND", False, _rest("GET", "/v1/models/digits/versions/99")),
        Case(
            "classify without examples",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", classify, b'{"signature_name": "classify"}'),
        ),
        Case(
            "classify with scalar examples",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", classify, b'{"signature_name": "classify", "examples": [1, 2]}'),
        ),
        Case(
            "classify with null feature",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", classify, b'{"signature_name": "classify", "examples": [{"pixels": [null]}]}'),
        ),
        Case(
            "classify with short feature",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", classify, b'{"signature_name": "classify", "examples": [{"pixels": [0.5, 0.5]}]}'),
        ),
        Case(
            "classify on predict signature",
            "INVALID_ARGUMENT",
            True,
            _rest("POST", classify, json.dumps({"examples": [{"pixels": [0.5] * 64}]}).encode()),
        ),
    ]
    wrong_width = np.zeros((1, 3), np.float32)
    good = np.zeros((2, 64), np.float32)
    grpc_cases = [
        Case("grpc wrong shape", "INVALID_ARGUMENT", True, _grpc("Predict", _predict({"pixels": wrong_width}))),
        Case(
            "grpc int64 dtype",
            "INVALID_ARGUMENT",
            True,
            _grpc("Predict", _predict({"pixels": np.zeros((1, 64), np.int64)})),
        ),
        Case(
            "grpc string dtype",
            "INVALID_ARGUMENT",
            True,
            _grpc("Predict", _predict({"pixels": np.array([[b"x"] * 64], dtype=object)})),
        ),
        Case("grpc unknown alias", "INVALID_ARGUMENT", True, _grpc("Predict", _predict({"pixelz": good}))),
        Case("grpc extra input", "INVALID_ARGUMENT", True, _grpc("Predict", _predict({"pixels": good, "x": good}))),
        Case("grpc no inputs", "INVALID_ARGUMENT", True, _grpc("Predict", _predict({}))),
        Case("grpc unknown version", "NOT_FOUND", True, _grpc("Predict", _predict({"pixels": good}, version=99))),
        Case("grpc corrupt version", "NOT_FOUND", True, _grpc("Predict", _predict({"pixels": good}, version=4))),
        Case("grpc unknown model", "NOT_FOUND", True, _grpc("Predict", _predict({"pixels": good}, name="nope"))),
        Case(
            "grpc unknown signature",
            "FAILED_PRECONDITION",
            True,
            _grpc("Predict", _predict({"pixels": good}, signature="nope")),
        ),
        Case(
            "grpc unknown output",
            "INVALID_ARGUMENT",
            True,
            _grpc("Predict", _predict({"pixels": good}, output_filter=["nope"])),
        ),
        Case(
            "grpc absurd shape",
            "INVALID_ARGUMENT",
            True,
            _grpc("Predict", _predict({"pixels": _tensor_proto(dtype=1, shape=[100000, 100000])})),
        ),
        Case(
            "grpc torn tensor content",
            "INVALID_ARGUMENT",
            True,
            _grpc("Predict", _predict({"pixels": _tensor_proto(dtype=1, shape=[1, 64], tensor_content=b"abc")})),
        ),
        Case("grpc classify empty", "INVALID_ARGUMENT", True, _grpc("Classify", _classify([]))),
        Case("grpc classify short feature", "INVALID_ARGUMENT", True, _grpc("Classify", _classify([[0.5] * 3]))),
        Case(
            "grpc classify on predict signature",
            "INVALID_ARGUMENT",
            True,
            _grpc("Classify", _classify([[0.5] * 64], signature="")),
        ),
        Case("grpc status of unknown model", "NOT_FOUND", False, _grpc("GetModelStatus", _status("nope"))),
        Case("grpc status of unknown version", "NOT_FOUND", False, _grpc("GetModelStatus", _status("digits", 42))),
    ]
    return rest + grpc_cases


def _request_counts(http: httpx.Client) -> Counter[str]:
    counts: Counter[str] = Counter()
    pattern = re.compile(r'^:tensorflow:serving:request_count\{model_name="[^"]*",status="([A-Z_]+)"\} (\d+)$')
    for line in http.get(METRICS_PATH).text.splitlines():
        match = pattern.match(line)
        if match:
            counts[match[1]] += int(match[2])
    return counts


def test_a_thousand_malformed_requests_get_errors_and_leave_it_serving(
    server: testing.RunningServer, http: httpx.Client, holdout: tuple[np.ndarray, np.ndarray]
) -> None:
    cases = malformed_cases()
    plan = [cases[i % len(cases)] for i in range(1000)]
    predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel())
    status_stub = model_service_pb2_grpc.ModelServiceStub(server.channel())
    before = _request_counts(http)

    with ThreadPoolExecutor(max_workers=4) as pool:
        observed = list(pool.map(lambda case: case.send(http, predict_stub, status_stub), plan))

    wrong = {case.name: code for case, code in zip(plan, observed, strict=True) if code != case.expected}
    assert not wrong, f"unexpected codes: {wrong}"
    assert server.alive()
    expected_counts = Counter(case.expected for case in plan if case.counted)
    after = _request_counts(http)
    assert {code: after[code] - before[code] for code in expected_counts} == dict(expected_counts)

    inputs = holdout[0][:3]
    response = http.post("/v1/models/digits/versions/2:predict", json={"instances": inputs.tolist()})
    assert response.status_code == 200
    assert [p["classes"] for p in response.json()["predictions"]] == _direct_classes(2, inputs)
    assert server.alive()


def test_metrics_page_has_tf_serving_names_and_labels(
    http: httpx.Client, holdout: tuple[np.ndarray, np.ndarray]
) -> None:
    assert http.post("/v1/models/digits/versions/2:predict", json={"instances": holdout[0][:2].tolist()}).is_success
    assert http.post("/v1/models/digits/versions/2:predict", json={"instances": [[1]]}).status_code == 400
    page = http.get(METRICS_PATH)
    assert page.status_code == 200
    text = page.text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert re.search(r'^:tensorflow:serving:request_count\{model_name="digits",status="OK"\} [1-9]\d*$', text, re.M)
    assert re.search(
        r'^:tensorflow:serving:request_count\{model_name="digits",status="INVALID_ARGUMENT"\} [1-9]', text, re.M
    )
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    bucket = re.search(
        r'^:tensorflow:serving:request_latency_bucket\{model_name="digits",API="predict",entrypoint="REST",'
        r'status="OK",le="\+Inf"\} (\d+)$',
        text,
        re.M,
    )
    count = re.search(
        r'^:tensorflow:serving:request_latency_count\{model_name="digits",API="predict",entrypoint="REST",'
        r'status="OK"\} (\d+)$',
        text,
        re.M,
    )
    assert bucket and count and bucket[1] == count[1] and int(count[1]) >= 1
    assert 'le="10"' in text and 'le="18"' in text  # TF Serving's Exponential(10, 1.8, 33) microsecond buckets
    assert re.search(
        r':tensorflow:cc:saved_model:load_attempt_count\{model_path="[^"]+/digits/4",status="fail"\} 1', text
    )
    assert re.search(
        r':tensorflow:cc:saved_model:load_attempt_count\{model_path="[^"]+/digits/2",status="success"\} 1', text
    )


def test_unknown_subresource_is_a_malformed_request(http: httpx.Client) -> None:
    response = http.get("/v1/models/digits/versions/2/metadata/extra")
    assert response.status_code == 400
    assert response.json()["error"] == "Malformed request: GET /v1/models/digits/versions/2/metadata/extra"
