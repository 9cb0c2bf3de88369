"""Flags and wiring: what ``tensorflow_model_server`` (as the tensorflow/serving image runs it) would do.

TensorFlow is imported once, before the ports open, so the first request never
pays for it; SavedModels then load on a background thread while both ports
already answer.  Flags TF Serving has but this server does not implement are
accepted and logged, so a Deployment written for the real image runs unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

log = logging.getLogger("devstack.modelserver")


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "t", "y")


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.modelserver",
        description="A TF-Serving-compatible model server for devstack (gRPC + REST + Prometheus).",
        allow_abbrev=False,
    )
    # The tensorflow/serving image's entrypoint fills these two from MODEL_NAME and MODEL_BASE_PATH.
    model_name = os.environ.get("MODEL_NAME", "model")
    base = os.environ.get("MODEL_BASE_PATH", "/models")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0 disables REST)")
    parser.add_argument("--bind_address", default="0.0.0.0", help="address both ports listen on")
    parser.add_argument("--model_name", default=model_name)
    parser.add_argument("--model_base_path", default=f"{base.rstrip('/')}/{model_name}")
    parser.add_argument("--model_config_file", default="", help="text ModelServerConfig (overrides name/base path)")
    parser.add_argument("--monitoring_config_file", default="", help="text MonitoringConfig (prometheus_config)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--max_num_load_retries", type=int, default=5)
    parser.add_argument("--load_retry_interval_micros", type=int, default=60_000_000)
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0)
    parser.add_argument("--grpc_max_threads", type=int, default=8)
    parser.add_argument("--rest_api_num_threads", type=int, default=0, help="accepted; the REST server is threaded")
    parser.add_argument("--enable_model_warmup", type=_bool, default=True, help="accepted; nothing to warm up")
    return parser


def parse_flags(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    return flag_parser().parse_known_args(argv)


def _configure_tensorflow(intra: int, inter: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


class ModelServer:
    """Both servers plus the version manager; ``start`` returns as soon as the ports listen."""

    def __init__(self, flags: argparse.Namespace) -> None:
        from devstack import paths
        from devstack.modelserver import config

        self.flags = flags
        if flags.model_config_file:
            self.models = config.read_model_server_config(paths.resolve(flags.model_config_file))
        else:
            self.models = config.single_model_config(flags.model_name, flags.model_base_path)
        self.prometheus = config.PrometheusConfig()
        if flags.monitoring_config_file:
            path = paths.resolve(flags.monitoring_config_file)
            self.prometheus = config.parse_monitoring_config(path.read_text(), source=str(path))

    def start(self) -> None:
        _configure_tensorflow(self.flags.tensorflow_intra_op_parallelism, self.flags.tensorflow_inter_op_parallelism)
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from devstack.modelserver import grpc_service, rest
        from devstack.modelserver.manager import ServableManager
        from devstack.modelserver.metrics import ServingMetrics
        from devstack.modelserver.servable import Servable

        def load(name: str, version: int, path: Path) -> Servable:
            return Servable(name, version, path)

        self.metrics = ServingMetrics()
        self.manager = ServableManager(
            self.models,
            load,
            self.metrics,
            poll_seconds=self.flags.file_system_poll_wait_seconds,
            max_load_retries=self.flags.max_num_load_retries,
            retry_interval_seconds=self.flags.load_retry_interval_micros / 1e6,
        )
        self.grpc_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max(1, self.flags.grpc_max_threads), thread_name_prefix="grpc"),
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            grpc_service.PredictionService(self.manager, self.metrics), self.grpc_server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            grpc_service.ModelService(self.manager), self.grpc_server
        )
        address = self.flags.bind_address
        host = f"[{address}]" if ":" in address else address
        self.grpc_port = self.grpc_server.add_insecure_port(f"{host}:{self.flags.port}")
        if self.grpc_port == 0:
            raise OSError(f"could not bind gRPC to {host}:{self.flags.port}")
        self.rest_server = None
        if self.flags.rest_api_port:
            if self.flags.rest_api_port == self.flags.port:
                log.error("--rest_api_port cannot be same as --port. Skipped exporting HTTP/REST API.")
            else:
                api = rest.RestApi(self.manager, self.metrics, self.prometheus)
                self.rest_server = rest.RestServer(address, self.flags.rest_api_port, api)
        self.grpc_server.start()
        log.info("Running gRPC ModelServer at %s:%d ...", address, self.grpc_port)
        if self.rest_server is not None:
            self.rest_server.start()
            log.info("Exporting HTTP/REST API at:%s:%d ...", address, self.rest_server.port)
        self.manager.start()

    def stop(self) -> None:
        if self.rest_server is not None:
            self.rest_server.stop()
        self.grpc_server.stop(grace=2).wait(5)
        self.manager.stop()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow's C++ core
    logging.basicConfig(
        level=os.environ.get("DEVSTACK_LOG_LEVEL", "INFO"),
        format="%(asctime)s.%(msecs)03d: %(levelname).1s devstack/modelserver] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    flags, unknown = parse_flags(sys.argv[1:] if argv is None else argv)
    if unknown:
        log.warning("Ignoring TF Serving flags this server does not implement: %s", " ".join(unknown))
    started = time.monotonic()
    from devstack.modelserver.status import ServingError

    try:
        server = ModelServer(flags)
        server.start()
    except (ServingError, OSError, RuntimeError) as error:  # grpc raises RuntimeError when it cannot bind
        log.error("Failed to start server. Error: %s", error)
        return 1
    log.info("Ports open %.2f s after start", time.monotonic() - started)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("Received signal %d, shutting down", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def report_settled() -> None:
        if server.manager.wait_until_settled(timeout=3600):
            log.info("Initial loads settled %.2f s after start", time.monotonic() - started)

    # Off the main thread: a SIGTERM must be honoured even while a load is still being retried.
    threading.Thread(target=report_settled, name="settled", daemon=True).start()
    stopping.wait()
    server.stop()
    return 0
