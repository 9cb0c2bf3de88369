"""The gRPC PredictionService and ModelService, on the real tensorflow_serving.apis stubs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from devstack.modelserver import config as config_mod
from devstack.modelserver import servable as servable_mod
from devstack.modelserver import tensors
from devstack.modelserver.manager import ServableManager, VersionState
from devstack.modelserver.metrics import ServingMetrics
from devstack.modelserver.status import Code, ServingError, invalid_argument

log = logging.getLogger("devstack.modelserver")
Response = TypeVar("Response")


def grpc_code(code: Code) -> grpc.StatusCode:
    found: grpc.StatusCode = getattr(grpc.StatusCode, code.name, grpc.StatusCode.UNKNOWN)
    return found


def resolve_version(manager: ServableManager, model_spec: Any) -> int | None:
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return int(model_spec.version.value)
    if choice == "version_label":
        return manager.resolve_label(model_spec.name, model_spec.version_label)
    return None


def lookup(manager: ServableManager, model_spec: Any) -> servable_mod.Servable:
    found = manager.servable(model_spec.name, resolve_version(manager, model_spec))
    assert isinstance(found, servable_mod.Servable)
    return found


def status_response(states: list[VersionState]) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in states:
        entry = response.model_version_status.add()
        entry.version = state.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.SetInParent()  # TF Serving always reports a status, OK included
        if state.error is not None:
            entry.status.error_code = int(state.error.code)
            entry.status.error_message = state.error.message
    return response


def model_status(manager: ServableManager, request: Any) -> get_model_status_pb2.GetModelStatusResponse:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    spec = request.model_spec
    return status_response(manager.status(spec.name, resolve_version(manager, spec)))


def model_metadata(manager: ServableManager, request: Any) -> get_model_metadata_pb2.GetModelMetadataResponse:
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != "signature_def":
            raise invalid_argument(f"Metadata field {field} is not supported")
    servable = lookup(manager, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in servable.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(signature)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def message_json(message: Any) -> str:
    """TF Serving prints status/metadata with field names as declared and every primitive field."""
    try:
        return str(
            json_format.MessageToJson(
                message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=1
            )
        )
    except TypeError:  # protobuf < 5.26 spells the option differently
        return str(
            json_format.MessageToJson(
                message, preserving_proto_field_name=True, including_default_value_fields=True, indent=1
            )
        )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, manager: ServableManager, metrics: ServingMetrics) -> None:
        self._manager = manager
        self._metrics = metrics

    def _serve(
        self, context: grpc.ServicerContext, model: str, api: str | None, work: Callable[[], Response], empty: Response
    ) -> Response:
        """Run one call: map failures to gRPC status, never let an exception reach gRPC, record metrics."""
        started = time.monotonic()
        code = Code.OK
        try:
            return work()
        except ServingError as error:
            code = error.code
            context.set_code(grpc_code(error.code))
            context.set_details(error.message)
        except RecursionError:
            code = Code.INVALID_ARGUMENT
            context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
            context.set_details("Request is nested too deeply")
        except Exception as error:  # a bug here must not take the server down
            log.exception("%s failed unexpectedly", api)
            code = Code.INTERNAL
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details(f"{type(error).__name__}: {error}")
        finally:
            if api is not None:
                micros = (time.monotonic() - started) * 1e6
                self._metrics.record_request(model, api, "GRPC", code.name, micros)
        return empty

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work() -> predict_pb2.PredictResponse:
            servable = lookup(self._manager, request.model_spec)
            inputs = {alias: tensors.to_array(alias, proto) for alias, proto in request.inputs.items()}
            started = time.monotonic()
            signature, outputs = servable.predict(
                request.model_spec.signature_name, inputs, list(request.output_filter)
            )
            self._metrics.runtime_latency.observe((time.monotonic() - started) * 1e6, servable.name, "Predict", "TF1")
            self._metrics.graph_runs.inc()
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(tensors.to_proto(array))
            return response

        return self._serve(context, request.model_spec.name, "Predict", work, predict_pb2.PredictResponse())

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work() -> classification_pb2.ClassificationResponse:
            servable = lookup(self._manager, request.model_spec)
            examples = servable_mod.serialized_from_input(request.input)
            self._metrics.request_example_count_total.inc(servable.name, amount=len(examples))
            signature, result = servable.classify(request.model_spec.signature_name, examples)
            self._metrics.graph_runs.inc()
            response = classification_pb2.ClassificationResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for row in result:
                classifications = response.result.classifications.add()
                for label, score in row:
                    classifications.classes.add(label=label, score=score)
            return response

        return self._serve(
            context, request.model_spec.name, "Classify", work, classification_pb2.ClassificationResponse()
        )

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work() -> regression_pb2.RegressionResponse:
            servable = lookup(self._manager, request.model_spec)
            examples = servable_mod.serialized_from_input(request.input)
            signature, values = servable.regress(request.model_spec.signature_name, examples)
            response = regression_pb2.RegressionResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for value in values:
                response.result.regressions.add(value=value)
            return response

        return self._serve(context, request.model_spec.name, "Regress", work, regression_pb2.RegressionResponse())

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(
            context,
            request.model_spec.name,
            None,
            lambda: model_metadata(self._manager, request),
            get_model_metadata_pb2.GetModelMetadataResponse(),
        )

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("MultiInference is not implemented by the devstack model server")
        from tensorflow_serving.apis import inference_pb2

        return inference_pb2.MultiInferenceResponse()


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, manager: ServableManager) -> None:
        self._manager = manager

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return model_status(self._manager, request)
        except ServingError as error:
            context.set_code(grpc_code(error.code))
            context.set_details(error.message)
        except Exception as error:
            log.exception("GetModelStatus failed unexpectedly")
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details(str(error))
        return get_model_status_pb2.GetModelStatusResponse()

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = model_management_pb2.ReloadConfigResponse()
        try:
            config = model_server_config_pb2.ModelServerConfig()
            config.CopyFrom(request.config)
            self._manager.reload(config_mod.models_from_proto(config))
            response.status.error_code = 0
        except ServingError as error:
            response.status.error_code = int(error.code)
            response.status.error_message = error.message
            context.set_code(grpc_code(error.code))
            context.set_details(error.message)
        return response
