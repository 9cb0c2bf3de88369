"""Readiness, liveness and startup probes, run against the pod's real process as the kubelet runs them.

Parsing and the threshold arithmetic are pure (``parse_probe``, ``ProbeTracker``)
so that the kubelet's rules can be unit-tested: a result flips only after
``successThreshold`` / ``failureThreshold`` consecutive equal results, readiness
starts as failed, liveness as passed, startup as unknown, and nothing is probed
before ``initialDelaySeconds``.  ``run_probe`` performs one check: HTTP GET
(2xx/3xx passes), TCP connect, gRPC health ``Check`` (SERVING passes) or exec
(exit 0 passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ProbeKind = Literal["httpGet", "tcpSocket", "grpc", "exec"]
ProbeRole = Literal["readiness", "liveness", "startup"]
USER_AGENT = "kube-probe/1.34"


class ProbeSpecError(ValueError):
    pass


@dataclass(frozen=True)
class ProbeSpec:
    kind: ProbeKind
    port: int = 0
    host: str = ""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    service: str = ""
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def _resolve_port(value: Any, ports: Sequence[Mapping[str, Any]]) -> int:
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.isdigit():
        port = int(value)
    elif isinstance(value, str):
        named = [p.get("containerPort") for p in ports if p.get("name") == value]
        if not named or not isinstance(named[0], int):
            raise ProbeSpecError(f"probe names port {value!r}, which the container does not declare")
        port = named[0]
    else:
        raise ProbeSpecError(f"probe port {value!r} is neither a number nor a port name")
    if not 0 < port < 65536:
        raise ProbeSpecError(f"probe port {port} is out of range")
    return port


def parse_probe(probe: Mapping[str, Any], ports: Sequence[Mapping[str, Any]] = ()) -> ProbeSpec:
    """Turn a container's probe (API JSON, camelCase) into a ProbeSpec with the API's defaults applied."""
    timing: dict[str, Any] = {
        "initial_delay": float(probe.get("initialDelaySeconds") or 0),
        "period": float(probe.get("periodSeconds") or 10),
        "timeout": float(probe.get("timeoutSeconds") or 1),
        "success_threshold": int(probe.get("successThreshold") or 1),
        "failure_threshold": int(probe.get("failureThreshold") or 3),
    }
    if "httpGet" in probe:
        http = probe["httpGet"]
        headers = tuple((h["name"], h.get("value", "")) for h in http.get("httpHeaders") or ())
        return ProbeSpec(
            kind="httpGet",
            port=_resolve_port(http.get("port"), ports),
            host=http.get("host") or "",
            path=http.get("path") or "/",
            scheme=(http.get("scheme") or "HTTP").upper(),
            headers=headers,
            **timing,
        )
    if "tcpSocket" in probe:
        tcp = probe["tcpSocket"]
        return ProbeSpec(
            kind="tcpSocket", port=_resolve_port(tcp.get("port"), ports), host=tcp.get("host") or "", **timing
        )
    if "grpc" in probe:
        grpc_probe = probe["grpc"]
        return ProbeSpec(
            kind="grpc",
            port=_resolve_port(grpc_probe.get("port"), ports),
            service=grpc_probe.get("service") or "",
            **timing,
        )
    if "exec" in probe:
        command = tuple(probe["exec"].get("command") or ())
        if not command:
            raise ProbeSpecError("exec probe has an empty command")
        return ProbeSpec(kind="exec", command=command, **timing)
    raise ProbeSpecError(f"probe has no handler (httpGet, tcpSocket, grpc or exec): {sorted(probe)}")


@dataclass
class ProbeTracker:
    """The kubelet's per-probe result memory: a result only counts after enough equal results in a row."""

    success_threshold: int
    failure_threshold: int
    result: bool | None
    _last: bool | None = None
    _run: int = 0

    @classmethod
    def for_role(cls, role: ProbeRole, spec: ProbeSpec) -> ProbeTracker:
        initial = {"readiness": False, "liveness": True, "startup": None}[role]
        success_threshold = spec.success_threshold if role == "readiness" else 1
        return cls(success_threshold=success_threshold, failure_threshold=spec.failure_threshold, result=initial)

    def observe(self, success: bool) -> bool:
        """Record one probe outcome; return True when the probe's result changed."""
        if self._last == success:
            self._run += 1
        else:
            self._last, self._run = success, 1
        threshold = self.success_threshold if success else self.failure_threshold
        if self._run < threshold or self.result == success:
            return False
        self.result = success
        return True

    def reset(self, role: ProbeRole) -> None:
        """Forget everything, as the kubelet does when the container restarts."""
        self.result = {"readiness": False, "liveness": True, "startup": None}[role]
        self._last, self._run = None, 0


@dataclass(frozen=True)
class ProbeTarget:
    """Where and how the probed container runs."""

    pod_ip: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


async def run_probe(spec: ProbeSpec, target: ProbeTarget) -> tuple[bool, str]:
    """Probe once; return (passed, message).  Never raises for an unhealthy target."""
    try:
        if spec.kind == "httpGet":
            return await asyncio.wait_for(_http_get(spec, target), spec.timeout)
        if spec.kind == "tcpSocket":
            return await asyncio.wait_for(_tcp_connect(spec, target), spec.timeout)
        if spec.kind == "grpc":
            return await _grpc_health(spec, target)
        return await _exec(spec, target)
    except TimeoutError:
        return False, f"{spec.kind} probe timed out after {spec.timeout:g}s"
    except OSError as error:
        return False, f"{spec.kind} probe failed: {error}"


async def _http_get(spec: ProbeSpec, target: ProbeTarget) -> tuple[bool, str]:
    host = spec.host or target.pod_ip
    context: ssl.SSLContext | None = None
    if spec.scheme == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates either
    reader, writer = await asyncio.open_connection(host, spec.port, ssl=context)
    try:
        headers = {"Host": f"{host}:{spec.port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        headers.update(dict(spec.headers))
        headers["Connection"] = "close"
        request = f"GET {spec.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(request.encode("latin-1"))
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1").strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"HTTP probe got a malformed status line {status_line!r}"
    code = int(parts[1])
    if 200 <= code < 400:
        return True, f"HTTP probe passed with statuscode: {code}"
    return False, f"HTTP probe failed with statuscode: {code}"


async def _tcp_connect(spec: ProbeSpec, target: ProbeTarget) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(spec.host or target.pod_ip, spec.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, "TCP connect succeeded"


def encode_health_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest{service}: field 1, length-delimited (hand-encoded, no stubs needed)."""
    data = service.encode()
    if not data:
        return b""
    return b"\x0a" + _varint(len(data)) + data


def decode_health_status(message: bytes) -> int:
    """The ``status`` enum (field 1, varint) of a HealthCheckResponse; 0 (UNKNOWN) when absent."""
    position = 0
    status = 0
    while position < len(message):
        key, position = _read_varint(message, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(message, position)
            if number == 1:
                status = value
        elif wire_type == 2:
            length, position = _read_varint(message, position)
            position += length
        else:
            raise ValueError(f"unexpected wire type {wire_type} in HealthCheckResponse")
    return status


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


SERVING = 1


async def _grpc_health(spec: ProbeSpec, target: ProbeTarget) -> tuple[bool, str]:
    import grpc  # only pods with gRPC probes pay for loading grpc

    address = f"{spec.host or target.pod_ip}:{spec.port}"
    async with grpc.aio.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = await check(encode_health_request(spec.service), timeout=spec.timeout)
        except grpc.aio.AioRpcError as error:
            return False, f"gRPC probe failed: {error.code().name}: {error.details()}"
    status = decode_health_status(reply)
    if status == SERVING:
        return True, "gRPC probe: SERVING"
    return False, f"gRPC probe: service unhealthy (status {status})"


async def _exec(spec: ProbeSpec, target: ProbeTarget) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_exec(
        *spec.command,
        env=dict(target.env),
        cwd=target.cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), spec.timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return False, f"exec probe timed out after {spec.timeout:g}s"
    text = output.decode(errors="replace").strip()[-1024:]
    if process.returncode == 0:
        return True, text
    return False, f"exec probe exited with {process.returncode}: {text}"
