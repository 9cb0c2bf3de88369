"""TF Serving's REST API and its Prometheus page, on the standard library's threading HTTP server.

Routes (case-insensitive, as TF Serving's regexes):

- ``GET  /v1/models/<name>[/versions/<v>|/labels/<l>]``: GetModelStatus as JSON.
  One deliberate difference: the HTTP code is 503 while none of the reported
  versions is AVAILABLE.  Real TF Serving opens its ports only after the first
  load, so a readiness probe fails until then; this server answers from the
  first moment (so LOADING is observable) and keeps probes honest this way.
- ``GET  /v1/models/<name>[/versions/<v>]/metadata``: the SignatureDefs.
- ``POST /v1/models/<name>[/versions/<v>|/labels/<l>]:(predict|classify|regress)``.
- ``GET  <monitoring path>``: metrics, when the monitoring config enables them.

Errors are ``{"error": "<message>"}`` with TF Serving's HTTP code for the status.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from devstack.modelserver import grpc_service, rest_json
from devstack.modelserver import servable as servable_mod
from devstack.modelserver.config import PrometheusConfig
from devstack.modelserver.manager import AVAILABLE, ServableManager
from devstack.modelserver.metrics import ServingMetrics
from devstack.modelserver.status import Code, ServingError, http_status, invalid_argument

log = logging.getLogger("devstack.modelserver")

_API_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<resource>metadata))?"
    r"(?::(?P<method>classify|regress|predict))?",
    re.IGNORECASE,
)
_MAX_BODY = 256 << 20


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


class RestApi:
    """Transport-free request handling, so the HTTP layer stays a thin shell."""

    def __init__(self, manager: ServableManager, metrics: ServingMetrics, prometheus: PrometheusConfig) -> None:
        self.manager = manager
        self.metrics = metrics
        self.prometheus = prometheus

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        if self.prometheus.enable and path == self.prometheus.path:
            if method != "GET":
                return self._error(invalid_argument(f"Malformed request: {method} {path}"))
            return Reply(200, self.metrics.render().encode(), "text/plain; version=0.0.4")
        if not path.lower().startswith("/v1/"):
            return Reply(404, b"", "text/plain")
        match = _API_PATH.fullmatch(path)
        if match is None or (method not in ("GET", "POST")):
            return self._error(invalid_argument(f"Malformed request: {method} {path}"))
        name, verb = match["name"] or "", (match["method"] or "").lower()
        if method == "POST" and verb and not match["resource"]:
            return self._predict_family(verb, name, match, body)
        if method == "GET" and not verb:
            try:
                version = self._version(name, match)
                if not name:
                    raise invalid_argument("Missing model name in request.")
                if match["resource"]:
                    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
                    request.model_spec.name = name
                    if version is not None:
                        request.model_spec.version.value = version
                    metadata = grpc_service.model_metadata(self.manager, request)
                    return Reply(200, grpc_service.message_json(metadata).encode())
                states = self.manager.status(name, version)
                response = get_model_status_pb2.GetModelStatusResponse()
                response.CopyFrom(grpc_service.status_response(states))
                ready = any(state.state == AVAILABLE for state in states)
                return Reply(200 if ready else 503, grpc_service.message_json(response).encode())
            except ServingError as error:
                return self._error(error)
        return self._error(invalid_argument(f"Malformed request: {method} {path}"))

    def _version(self, name: str, match: re.Match[str]) -> int | None:
        if match["version"] is not None:
            text = match["version"]
            if not text.isdigit():
                raise invalid_argument(f"Failed to convert version: {text} to numeric.")
            return int(text)
        if match["label"] is not None:
            return self.manager.resolve_label(name, match["label"])
        return None

    def _predict_family(self, verb: str, name: str, match: re.Match[str], body: bytes) -> Reply:
        started = time.monotonic()
        code = Code.OK
        try:
            version = self._version(name, match)
            servable = self.manager.servable(name, version)
            assert isinstance(servable, servable_mod.Servable)
            document = rest_json.parse_document(body)
            signature = rest_json.signature_name(document)
            if verb == "predict":
                inputs, response_format = rest_json.predict_inputs(
                    document, servable.input_dtypes(signature), signature
                )
                run_started = time.monotonic()
                _, outputs = servable.predict(signature, inputs)
                self.metrics.runtime_latency.observe((time.monotonic() - run_started) * 1e6, name, "Predict", "TF1")
                text = rest_json.predict_response(outputs, response_format)
            else:
                context, examples = rest_json.classify_examples(document, verb)
                serialized = servable_mod.serialize_json_examples(context, examples)
                self.metrics.request_example_count_total.inc(name, amount=len(serialized))
                if verb == "classify":
                    _, classes = servable.classify(signature, serialized)
                    text = rest_json.classification_response(classes)
                else:
                    _, values = servable.regress(signature, serialized)
                    text = json.dumps({"results": values})
            self.metrics.graph_runs.inc()
            return Reply(200, text.encode())
        except ServingError as error:
            code = error.code
            return self._error(error)
        except RecursionError:
            code = Code.INVALID_ARGUMENT
            return self._error(invalid_argument("JSON Parse error: Nesting is too deep."))
        except Exception as error:  # a bug here must not take the server down
            log.exception("REST %s failed unexpectedly", verb)
            code = Code.INTERNAL
            return self._error(ServingError(Code.INTERNAL, f"{type(error).__name__}: {error}"))
        finally:
            self.metrics.record_request(name, verb, "REST", code.name, (time.monotonic() - started) * 1e6)

    @staticmethod
    def _error(error: ServingError) -> Reply:
        return Reply(http_status(error.code), rest_json.error_body(error.message).encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "devstack-model-server"
    api: RestApi  # set on the subclass built by serve_rest

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()  # always drain it, or a keep-alive connection desynchronises
        except (ValueError, OSError):
            self.close_connection = True
            reply = Reply(400, rest_json.error_body("Malformed request body").encode())
        else:
            path = self.path.split("?", 1)[0]
            reply = self.api.handle(self.command, path, body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("rest: " + format, *args)


class RestServer:
    def __init__(self, address: str, port: int, api: RestApi) -> None:
        handler = type("Handler", (_Handler,), {"api": api})
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer((address, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rest", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
