"""Start the model server as a real process on a free loopback address, for tests and benchmarks.

Readiness is a condition, never a sleep: ``wait_for_states`` polls
GetModelStatus over gRPC until every asked-for version reaches a final state
or the deadline passes.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINAL_STATES = ("AVAILABLE", "END")


def free_loopback_endpoint() -> tuple[str, int, int]:
    """A random 127.x address with two free ports on it (gRPC, REST)."""
    rng = random.SystemRandom()
    for _ in range(50):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 254)}.{rng.randint(1, 254)}"
        sockets = []
        try:
            for _ in range(2):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((address, 0))
            return address, sockets[0].getsockname()[1], sockets[1].getsockname()[1]
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free loopback endpoint")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    address: str
    grpc_port: int
    rest_port: int
    log_path: Path
    started_at: float
    _channels: list[Any] = field(default_factory=list)

    @property
    def grpc_target(self) -> str:
        return f"{self.address}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.address}:{self.rest_port}"

    def channel(self) -> Any:
        import grpc

        channel = grpc.insecure_channel(self.grpc_target)
        self._channels.append(channel)
        return channel

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        for channel in self._channels:
            channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(args: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> RunningServer:
    address, grpc_port, rest_port = free_loopback_endpoint()
    command = [
        sys.executable,
        "-m",
        "devstack.modelserver",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--bind_address={address}",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=1",
        *args,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    return RunningServer(process, address, grpc_port, rest_port, log_path, time.monotonic())


def model_status(channel: Any, model: str, version: int | None = None, timeout: float = 2.0) -> Any:
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    return model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=timeout)


def wait_for_states(
    server: RunningServer, model: str, versions: Sequence[int], timeout: float = 120.0
) -> dict[int, Any]:
    """Poll GetModelStatus until each version is AVAILABLE or END; return {version: ModelVersionStatus}."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2

    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    channel = server.channel()
    deadline = time.monotonic() + timeout
    last: dict[int, Any] = {}
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"model server exited with {server.process.returncode}:\n{server.log_text()[-4000:]}")
        with contextlib.suppress(grpc.RpcError, grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            response = model_status(channel, model)
            last = {s.version: s for s in response.model_version_status}
            if all(v in last and state_name(last[v].state) in FINAL_STATES for v in versions):
                return last
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # poll interval, not a synchronisation
    raise TimeoutError(
        f"versions {list(versions)} of {model} not settled; last status {last}\n{server.log_text()[-4000:]}"
    )


@contextlib.contextmanager
def running_server(args: Sequence[str], log_path: Path) -> Iterator[RunningServer]:
    server = start_server(args, log_path)
    try:
        yield server
    finally:
        server.stop()


def specific_versions_config(name: str, base_path: Path | str, versions: Sequence[int]) -> str:
    """The text ModelServerConfig the operator writes per Deployment."""
    listed = " ".join(f"versions: {v}" for v in versions)
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {listed} }} }}\n"
        "  }\n"
        "}\n"
    )


MONITORING_CONFIG = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
