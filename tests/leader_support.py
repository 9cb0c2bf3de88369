"""What the leader-election tests share: a clock they move by hand, async waiting, real failures to inject.

Why a hand-moved clock: the properties under test are about time (validity,
expiry), and a clock the test moves makes them exact instead of racing the
machine's load.  The API server, the network errors and ``/healthz`` stay
real: a cuttable TCP proxy gives the client genuine refused and reset
connections, and a port nobody listens on a genuine connection error.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from devstack.testing import Cluster
from modelrelease.metrics import REGISTRY

T = TypeVar("T")


class ManualClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def eventually(predicate: Callable[[], T], timeout: float, message: str = "") -> T:
    """``devstack.testing.wait_for`` for code that runs in the event loop the awaited tasks need."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message or 'condition not met'} after {timeout:.1f} s; last value: {value!r}")
        await asyncio.sleep(0.02)
    return value


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def lease_errors() -> float:
    return REGISTRY.get_sample_value("modelrelease_lease_errors_total") or 0.0


async def api_client(cluster: Cluster, host: str | None = None, cls: type[Any] = client.ApiClient) -> Any:
    """A kubernetes_asyncio client of ``cls`` for the devstack, optionally through another host:port."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    if host is not None:
        configuration.host = host
    return cls(configuration)


class CountingApiClient(client.ApiClient):  # type: ignore[misc]
    """Counts completed reads of Leases, so a test knows an elector has looked since something changed."""

    lease_reads = 0

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = await super().request(method, url, *args, **kwargs)
        if method == "GET" and "/leases/" in url:
            self.lease_reads += 1
        return response


async def reads_more(api: CountingApiClient, count: int = 2, timeout: float = 20.0) -> None:
    """Wait until ``count`` more Lease reads completed: the last of them started after this call."""
    target = api.lease_reads + count
    await eventually(lambda: api.lease_reads >= target, timeout, message=f"{count} more lease reads")


async def write_lease(
    api: Any, namespace: str, name: str, holder: str | None, renew_time: datetime, duration: int = 10
) -> Any:
    """Create the Lease, or overwrite it as another replica (maybe with a skewed clock) would."""
    leases = client.CoordinationV1Api(api)
    spec = client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=duration, acquire_time=renew_time, renew_time=renew_time
    )
    try:
        lease = await leases.read_namespaced_lease(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        body = client.V1Lease(metadata=client.V1ObjectMeta(name=name, namespace=namespace), spec=spec)
        return await leases.create_namespaced_lease(namespace, body)
    lease.spec = spec
    return await leases.replace_namespaced_lease(name, namespace, lease)


async def read_lease(api: Any, namespace: str, name: str) -> Any:
    return await client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)


async def http_status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it; how it ended is the test's business, asserted before."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class CuttableProxy:
    """A TCP proxy to the API server: ``cut()`` drops every connection and stops listening, ``restore()`` listens again.

    A client behind it sees what a network partition shows: connections
    refused and reset, for real, while the API server itself keeps running.
    """

    def __init__(self, api_server: str) -> None:
        target = urlsplit(api_server)
        self._target = (target.hostname or "127.0.0.1", target.port or 443)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    restore = start

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, upstream_writer}
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        self._open -= {writer, upstream_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.transport.abort()
