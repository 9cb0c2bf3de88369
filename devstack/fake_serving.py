"""Stand-ins for what kwok's fake pods cannot run: TF Serving's gRPC answers at every pod address, and their metrics.

Why: a scale test runs hundreds of releases on kwok nodes (devstack.kwok),
whose pods get addresses in ``127.255.128.0/17`` but run no process.  The
operator still asks each candidate pod ``ModelService.GetModelStatus`` over
gRPC and may run the golden set through ``Predict``, and its analysis
queries Prometheus for per-version counters.  One process here does both:

- the *responder*: it watches the pods of ModelReleases, and for each pod
  with an address in kwok's block it listens on ``<pod IP>:8500`` and
  forwards the bytes to one gRPC server of its own on 127.0.0.1, which says
  every asked version is AVAILABLE and answers ``Predict`` with class 0 for
  every row.  Listening per address (not on 0.0.0.0) leaves port 8500 of the
  pod runner's real model servers alone; the listener closes when its pod
  goes.  Nothing is ever dialled but 127.0.0.1, and only addresses inside
  127.0.0.0/8 are listened on;
- the *exporter*: ``/metrics`` on 127.0.0.1 with
  ``model_prediction_outcomes_total{model, version, outcome}`` for every
  (release, version) whose pods it has seen, growing at ``--rate`` requests
  per second per version with ``--accuracy`` of them correct.  The model
  label is the release's name: a scale test names each release's model after
  it.  It registers itself as a static Prometheus target (devstack.prometheus).

Run: ``python -m devstack.fake_serving --kubeconfig K --state-dir D --namespace-prefix P``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from kubernetes_asyncio import client, config

from devstack import kwok, prometheus

# The operator's own protobuf modules: tensorflow_serving.apis would import all of TensorFlow.
from modelrelease.serving.stubs import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger("devstack.fake_serving")

GRPC_PORT = 8500
LABEL_RELEASE = "modelrelease.io/release"
LABEL_VERSION = "modelrelease.io/version"
FAKE_BLOCK = ipaddress.ip_network(kwok.POD_CIDR, strict=False)
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
EXPORTER_JOB = "fake-serving"


def may_listen_on(ip: str) -> bool:
    """Only kwok's fake pod addresses, which are all inside 127.0.0.0/8."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address in FAKE_BLOCK and address in LOOPBACK


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    async def GetModelStatus(self, request: Any, context: Any) -> Any:
        response = get_model_status_pb2.GetModelStatusResponse()
        entry = response.model_version_status.add()
        entry.version = request.model_spec.version.value
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value("AVAILABLE")
        return response


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    async def Predict(self, request: Any, context: Any) -> Any:
        rows = 0
        for tensor in request.inputs.values():
            dims = tensor.tensor_shape.dim
            rows = int(dims[0].size) if dims else 1
            break
        output = request.output_filter[0] if request.output_filter else "classes"
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        tensor = response.outputs[output]
        tensor.dtype = 9  # DT_INT64
        tensor.tensor_shape.dim.add().size = rows
        tensor.int64_val.extend([0] * rows)
        return response


class Counters:
    """Per (model, version): when it was first seen; the counters grow from then on at a steady rate."""

    def __init__(self, rate: float, accuracy: float) -> None:
        self.rate = rate
        self.accuracy = accuracy
        self.since: dict[tuple[str, str], float] = {}

    def saw(self, model: str, version: str) -> None:
        self.since.setdefault((model, version), time.time())

    def exposition(self, now: float) -> str:
        lines = [
            "# HELP model_prediction_outcomes_total Predictions by outcome (devstack.fake_serving).",
            "# TYPE model_prediction_outcomes_total counter",
        ]
        for (model, version), since in sorted(self.since.items()):
            total = self.rate * max(0.0, now - since)
            correct = int(total * self.accuracy)
            wrong = int(total) - correct
            for outcome, value in (("correct", correct), ("incorrect", wrong)):
                labels = f'model="{model}",version="{version}",outcome="{outcome}"'
                lines.append(f"model_prediction_outcomes_total{{{labels}}} {value}")
        return "\n".join(lines) + "\n"


class Responder:
    """A listener on ``<pod IP>:8500`` per fake pod, each connection spliced to the one gRPC server."""

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.listeners: dict[str, asyncio.Server] = {}

    async def listen(self, ip: str) -> None:
        if ip in self.listeners or not may_listen_on(ip):
            return
        try:
            self.listeners[ip] = await asyncio.start_server(self._splice, ip, GRPC_PORT)
        except OSError as error:
            log.warning("cannot listen on %s:%d: %s", ip, GRPC_PORT, error)

    async def forget(self, ip: str) -> None:
        server = self.listeners.pop(ip, None)
        if server is not None:
            server.close()

    async def _splice(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer), return_exceptions=True)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def watch_pods(api_client: client.ApiClient, prefix: str, responder: Responder, counters: Counters) -> None:
    """Follow the releases' pods in namespaces starting with ``prefix``: listen for each, count its version."""
    core = client.CoreV1Api(api_client)
    resource_version: str | None = None
    ip_of: dict[tuple[str, str], str] = {}
    while True:
        try:
            if resource_version is None:
                listed = await core.list_pod_for_all_namespaces(label_selector=LABEL_RELEASE, _preload_content=False)
                body = json.loads(await listed.read())
                for pod in body.get("items") or []:
                    await _pod_event("ADDED", pod, prefix, responder, counters, ip_of)
                resource_version = body["metadata"]["resourceVersion"]
            stream = await core.list_pod_for_all_namespaces(
                label_selector=LABEL_RELEASE,
                watch=True,
                resource_version=resource_version,
                timeout_seconds=240,
                _request_timeout=270,
                _preload_content=False,
            )
            while line := await stream.content.readline():
                event = json.loads(line)
                pod = event.get("object") or {}
                if event.get("type") == "ERROR":
                    resource_version = None
                    break
                resource_version = (pod.get("metadata") or {}).get("resourceVersion", resource_version)
                await _pod_event(str(event.get("type")), pod, prefix, responder, counters, ip_of)
            stream.release()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("pod watch: %s: %s", type(error).__name__, error)
            resource_version = None
            await asyncio.sleep(1)


async def _pod_event(
    event_type: str,
    pod: dict[str, Any],
    prefix: str,
    responder: Responder,
    counters: Counters,
    ip_of: dict[tuple[str, str], str],
) -> None:
    metadata = pod.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    if not namespace.startswith(prefix):
        return
    key = (namespace, str(metadata.get("name")))
    labels = metadata.get("labels") or {}
    ip = (pod.get("status") or {}).get("podIP")
    if event_type == "DELETED" or metadata.get("deletionTimestamp"):
        old = ip_of.pop(key, None)
        if old is not None and old not in ip_of.values():
            await responder.forget(old)
        return
    if labels.get(LABEL_RELEASE) and labels.get(LABEL_VERSION):
        counters.saw(str(labels[LABEL_RELEASE]), str(labels[LABEL_VERSION]))
    if ip and may_listen_on(str(ip)):
        ip_of[key] = str(ip)
        await responder.listen(str(ip))


async def serve(args: argparse.Namespace) -> None:
    server = grpc.aio.server()
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(), server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    backend_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    responder = Responder(backend_port)
    counters = Counters(args.rate, args.accuracy)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=counters.exposition(time.time()), content_type="text/plain")

    async def status(_: web.Request) -> web.Response:
        return web.json_response({"listeners": len(responder.listeners), "series": len(counters.since)})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.exporter_port)
    await site.start()
    address = f"127.0.0.1:{args.exporter_port}"
    if args.state_dir:
        prometheus.register_target(Path(args.state_dir), EXPORTER_JOB, address)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(args.kubeconfig), client_configuration=configuration)
    api_client = client.ApiClient(configuration)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(watch_pods(api_client, args.namespace_prefix, responder, counters))
    log.info("fake serving: gRPC backend 127.0.0.1:%d, exporter %s", backend_port, address)
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if args.state_dir:
            prometheus.unregister_target(Path(args.state_dir), EXPORTER_JOB, address)
        for ip in list(responder.listeners):
            await responder.forget(ip)
        await runner.cleanup()
        await server.stop(None)
        await api_client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--state-dir", default="", help="devstack state directory: register the exporter there")
    parser.add_argument("--namespace-prefix", default="", help="only pods in namespaces starting with this")
    parser.add_argument("--exporter-port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second per version")
    parser.add_argument("--accuracy", type=float, default=0.97)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
