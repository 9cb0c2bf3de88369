"""Ask a TF Serving pod whether a model version loaded, and run the golden set through it.

Both calls go over gRPC (``grpc.aio``, since the operator's handlers are
async) with the stubs from ``stubs``.  Neither raises on a server or network
problem: they return what was observed, because the engine decides what an
unreachable pod or a failed prediction means at that point of the rollout
(keep waiting until a deadline, or roll back), and a raised exception would
lose the server's message that the rollback event should carry.

Why channels are pooled (``ChannelPool``): a pass asks every candidate pod
for its model status, every few seconds while a rollout waits; a channel per
call meant a TCP (and HTTP/2) handshake per pod per pass.  A channel is kept
per pod address and reused; it is closed when unused for
``CHANNEL_IDLE_SECONDS``, when its pod is deleted (``forget_pod``, fed by the
watch cache), and after a call on it got no answer, so a pod that is still
starting is dialled afresh on the next pass rather than through a channel
waiting out gRPC's reconnect back-off.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import grpc

from modelrelease.serving.golden import GoldenSet, Label
from modelrelease.serving.stubs import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from modelrelease.serving.tensors import TensorDecodeError, float_matrix, shape_of, values_of

LoadStateName = Literal["UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END"]

_CODE_NAMES: dict[int, str] = {status.value[0]: status.name for status in grpc.StatusCode}


CHANNEL_IDLE_SECONDS = 300.0
"""A pooled channel unused this long is closed (its pod may be long gone)."""


class ChannelPool:
    """One ``grpc.aio`` channel per ``host:port``, for the event loop that made the pool."""

    def __init__(self, idle_seconds: float = CHANNEL_IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle_seconds
        self._clock = clock
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._used: dict[str, float] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._channels)

    def __contains__(self, address: object) -> bool:
        return address in self._channels

    def channel(self, address: str) -> grpc.aio.Channel:
        now = self._clock()
        for stale in [a for a, used in self._used.items() if now - used > self._idle and a != address]:
            self.evict(stale)
        found = self._channels.get(address)
        if found is None:
            found = self._channels[address] = grpc.aio.insecure_channel(address)
        self._used[address] = now
        return found

    def evict(self, address: str) -> None:
        """Close the channel to ``address`` (if any); the next call dials afresh."""
        channel = self._channels.pop(address, None)
        self._used.pop(address, None)
        if channel is not None:
            closing = asyncio.ensure_future(channel.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def evict_host(self, host: str) -> None:
        """Close every channel to ``host`` (a pod's IP, whatever the port)."""
        for address in [a for a in self._channels if a.rsplit(":", 1)[0] == host]:
            self.evict(address)

    async def close(self) -> None:
        for address in list(self._channels):
            self.evict(address)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChannelPool] = weakref.WeakKeyDictionary()


def channels() -> ChannelPool:
    """The running event loop's pool (grpc.aio channels belong to the loop that made them)."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None:
        pool = _POOLS[loop] = ChannelPool()
    return pool


def forget_pod(event_type: str, kind: str, raw: dict[str, Any]) -> None:
    """A watch-cache listener: a deleted pod's channels are closed."""
    if event_type == "DELETED" and kind == "Pod":
        ip = (raw.get("status") or {}).get("podIP")
        if ip:
            channels().evict_host(str(ip))


def code_name(code: int) -> str:
    """Canonical error code name (gRPC and ``tensorflow.error.Code`` share one numbering)."""
    return _CODE_NAMES.get(code, str(code))


@dataclass(frozen=True)
class ModelLoadState:
    """One version's state as the server reports it.

    ``UNKNOWN`` means the server could not be asked or does not know the
    version yet (pod starting, model still being discovered); ``error_code``
    then holds the gRPC status code of the failed call.  ``END`` is final: a
    version that failed to load ends there with a non-zero ``error_code`` and
    the server's ``error_message``, and one that ended cleanly was unloaded;
    either way it will not serve.
    """

    version: int
    state: LoadStateName
    error_code: int = 0
    error_message: str = ""

    @property
    def available(self) -> bool:
        return self.state == "AVAILABLE"

    @property
    def failed(self) -> bool:
        return self.state == "END"

    def describe(self) -> str:
        if self.error_code == 0:
            return f"version {self.version} is {self.state}"
        return f"version {self.version} is {self.state}: {code_name(self.error_code)}: {self.error_message}"


async def model_status(address: str, model: str, version: int, timeout: float = 5.0) -> ModelLoadState:
    """``ModelService.GetModelStatus`` for one version of one model at ``host:port``."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    request.model_spec.version.value = version
    pool = channels()
    stub = model_service_pb2_grpc.ModelServiceStub(pool.channel(address))
    try:
        response = await stub.GetModelStatus(request, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        if error.code() in TRANSIENT_CODES:
            pool.evict(address)
        return ModelLoadState(version, "UNKNOWN", error.code().value[0], f"GetModelStatus: {error.details()}")
    for entry in response.model_version_status:
        if entry.version == version:
            state_names = get_model_status_pb2.ModelVersionStatus.State
            state: LoadStateName = state_names.Name(entry.state)
            return ModelLoadState(version, state, int(entry.status.error_code), entry.status.error_message)
    return ModelLoadState(version, "UNKNOWN", grpc.StatusCode.NOT_FOUND.value[0], "server did not report this version")


TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
"""gRPC codes that say nothing about the model: the request never got an answer (worth asking again)."""


@dataclass(frozen=True)
class SmokeResult:
    """Golden-set answers: instances whose prediction failed count as wrong and in ``errors``.

    ``unanswered`` counts the errors that got no answer at all (a transient
    gRPC code or the run's deadline): those say nothing about the model.
    """

    accuracy: float
    correct: int
    total: int
    errors: int
    first_error: str = ""
    unanswered: int = 0

    def describe(self) -> str:
        text = f"golden accuracy {self.accuracy:.4f} ({self.correct}/{self.total})"
        if self.errors:
            text += f", {self.errors} without an answer (first: {self.first_error})"
        return text


async def run_smoke(
    address: str, model: str, version: int, golden: GoldenSet, timeout: float = 30.0, batch_size: int = 64
) -> SmokeResult:
    """Send the golden set to ``PredictionService.Predict`` in batches and count right answers.

    ``timeout`` bounds the whole run, so a hung pod cannot stall the stage;
    batches are sent one after another to keep the load on a fresh pod small.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    correct = errors = unanswered = 0
    first_error = ""
    pool = channels()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(pool.channel(address))
    unreachable = False
    for start in range(0, len(golden.instances), batch_size):
        rows = golden.instances[start : start + batch_size]
        labels = golden.labels[start : start + batch_size]
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError(f"smoke deadline of {timeout}s passed")
            predictions = await _predict(stub, model, version, golden, rows, remaining)
        except (grpc.aio.AioRpcError, TensorDecodeError, TimeoutError) as error:
            errors += len(rows)
            first_error = first_error or _explain(error)
            transient = isinstance(error, TimeoutError) or (
                isinstance(error, grpc.aio.AioRpcError) and error.code() in TRANSIENT_CODES
            )
            unanswered += len(rows) if transient else 0
            unreachable = unreachable or (isinstance(error, grpc.aio.AioRpcError) and error.code() in TRANSIENT_CODES)
            continue
        correct += sum(1 for predicted, label in zip(predictions, labels, strict=True) if _same(predicted, label))
    if unreachable:
        pool.evict(address)
    total = len(golden.instances)
    accuracy = correct / total if total else 0.0
    return SmokeResult(accuracy, correct, total, errors, first_error, unanswered)


async def _predict(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    model: str,
    version: int,
    golden: GoldenSet,
    rows: tuple[tuple[float, ...], ...],
    timeout: float,
) -> list[int | float | bool | str]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.version.value = version
    request.model_spec.signature_name = golden.signature
    request.inputs[golden.input].CopyFrom(float_matrix(rows))
    request.output_filter.append(golden.output)
    response = await stub.Predict(request, timeout=timeout)
    if golden.output not in response.outputs:
        raise TensorDecodeError(f"response has no output {golden.output!r} (has {sorted(response.outputs)})")
    tensor = response.outputs[golden.output]
    values = values_of(tensor)
    if len(values) != len(rows):
        raise TensorDecodeError(f"output {golden.output!r} has shape {shape_of(tensor)} for {len(rows)} instances")
    return values


def _same(predicted: int | float | bool | str, label: Label) -> bool:
    if isinstance(label, str):
        return str(predicted) == label
    return not isinstance(predicted, str) and predicted == label


def _explain(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"Predict: {error.code().name}: {error.details()}"
    return str(error)
