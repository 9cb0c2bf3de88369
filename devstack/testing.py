"""What tests need from devstack: a handle on the cluster, waiting with a deadline, logs on failure.

Several test sessions (engineers, CI jobs) may share one devstack in the
default state directory.  Each session registers itself in ``<state>/users/``;
the cluster is started by the first session that finds none running and
stopped by the last one to leave, and only if a test session started it: a
devstack brought up by hand (``python -m devstack up``) or named by
``MODELRELEASE_KUBECONFIG`` is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from devstack import build, cluster
from devstack.state import StateDir, default_state_dir

T = TypeVar("T")

KUBECONFIG_ENV = "MODELRELEASE_KUBECONFIG"
HARNESS_AGENT = "devstack-tests"
"""The user agent of the tests' and benches' own API client: in the audit log, apart from the operator's."""
LOG_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "podrunner", "kwok", "prometheus")


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.2, message: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy and return that; TimeoutError after ``timeout`` s.

    Exceptions from the predicate propagate: a predicate that may fail while the
    world converges should catch what it expects.
    """
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message or 'condition not met'} after {timeout:.1f} s; last value: {last!r}")
        time.sleep(interval)
        last = predicate()
    return last


@dataclass
class Cluster:
    """A running cluster as tests see it; see tests/conftest.py for the fixtures that make one."""

    kubeconfig: Path
    env: dict[str, str]
    state_dir: Path
    api_server: str
    prometheus_url: str | None = None
    _clients: list[Any] = field(default_factory=list, repr=False)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the cluster's own kubectl; on failure (with ``check``) raise with its stderr in the message."""
        cmd = [str(build.bin_dir() / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, cmd, result.stdout, f"kubectl {' '.join(args)}: {result.stderr.strip()}"
            )
        return result

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for this cluster (closed when the session ends)."""
        from kubernetes import config

        client = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        client.user_agent = HARNESS_AGENT
        self._clients.append(client)
        return client

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]] | str, namespace: str | None = None) -> None:
        """Server-side apply of one object, a list of objects, or YAML text (several documents allowed)."""
        if isinstance(manifest, str):
            text = manifest
        else:
            items = manifest if isinstance(manifest, list) else [manifest]
            text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=devstack-tests", "-f", "-"]
        if namespace:
            args += ["--namespace", namespace]
        self.kubectl(*args, input=text)

    def get(self, kind: str, name: str | None = None, namespace: str | None = None, selector: str = "") -> Any:
        """``kubectl get -o json``; a list's ``items`` when no name is given."""
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["--namespace", namespace]
        if selector:
            args += ["--selector", selector]
        data = json.loads(self.kubectl(*args).stdout)
        return data if name else data["items"]

    def events(self, namespace: str, involved: str | None = None) -> list[dict[str, Any]]:
        """Events in ``namespace``, oldest first; only those about the object named ``involved`` if given."""
        items: list[dict[str, Any]] = self.get("events", namespace=namespace)
        if involved:
            items = [e for e in items if e.get("involvedObject", {}).get("name") == involved]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def logs(self, lines: int = 40, components: tuple[str, ...] = LOG_COMPONENTS) -> str:
        """The tail of each devstack component's log, for a failure report."""
        state = StateDir(self.state_dir)
        parts = [
            f"----- {name} ({state.log(name)}) -----\n{cluster.tail_log(state, name, lines)}"
            for name in components
            if state.log(name).exists()
        ]
        return "\n".join(parts) or f"(no devstack logs in {state.logs})"

    def kwok_nodes(self, count: int = 3) -> list[str]:
        """Start kwok on demand and make ``count`` fake nodes; see devstack.kwok for how they are kept apart."""
        from devstack import kwok

        return kwok.ensure(StateDir(self.state_dir), count)

    def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()


def _env_for(kubeconfig: Path, state: StateDir) -> dict[str, str]:
    env = dict(os.environ)
    env.update(cluster.env_vars(state))
    env["KUBECONFIG"] = env[KUBECONFIG_ENV] = str(kubeconfig)
    return env


def connect(state: StateDir) -> Cluster:
    """A handle on the devstack recorded in ``state`` (which must be running)."""
    record = state.read()
    if record is None:
        raise RuntimeError(f"no devstack recorded in {state.root}; run `python -m devstack up`")
    kubeconfig = Path(record.kubeconfig)
    return Cluster(kubeconfig, _env_for(kubeconfig, state), state.root, record.api_server, record.prometheus_url)


def from_kubeconfig(kubeconfig: Path) -> Cluster:
    """A handle on an already running cluster named by its kubeconfig (devstack's or any other)."""
    if not kubeconfig.is_file():
        raise RuntimeError(f"{KUBECONFIG_ENV}={kubeconfig}: no such file")
    state = StateDir(kubeconfig.parent)
    record = state.read()
    if record is not None:
        return connect(state)
    config = yaml.safe_load(kubeconfig.read_text()) or {}
    current = config.get("current-context")
    contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
    try:
        server = str(clusters[contexts[current]["cluster"]]["server"])
    except (KeyError, TypeError) as exc:
        raise RuntimeError(f"{kubeconfig}: no server for the current context ({exc})") from exc
    return Cluster(kubeconfig, _env_for(kubeconfig, state), state.root, server, os.environ.get("PROMETHEUS_URL"))


@contextlib.contextmanager
def session_cluster(state: StateDir | None = None) -> Iterator[Cluster]:
    """The cluster for one test session: reused if named or running, else started and later stopped."""
    named = os.environ.get(KUBECONFIG_ENV)
    if named:
        handle = from_kubeconfig(Path(named))
        try:
            yield handle
        finally:
            handle.close()
        return
    state = state or StateDir(default_state_dir())
    me = state.users / str(os.getpid())
    state.users.mkdir(parents=True, exist_ok=True)
    me.write_text(str(time.time()))
    try:
        cluster.up(state, started_by="pytest")
        handle = connect(state)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        _leave(state, me)


def _leave(state: StateDir, me: Path) -> None:
    with state.locked():
        me.unlink(missing_ok=True)
        others = state.live_users()
        for stale in set(state.users.glob("*")) - set(others):
            stale.unlink(missing_ok=True)
        record = state.read()
        if record is not None and record.started_by == "pytest" and not others:
            cluster.down_locked(state)


def namespace_name(test_name: str) -> str:
    """A valid, unique namespace name that still says which test made it."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"t-{slug}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def fresh_namespace(handle: Cluster, test_name: str, timeout: float = 30.0) -> Iterator[str]:
    """Create a namespace, wait for its default ServiceAccount (pods are rejected without it), delete it after."""
    name = namespace_name(test_name)
    handle.kubectl("create", "namespace", name)
    try:
        wait_for(
            lambda: handle.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            timeout,
            message=f"default ServiceAccount in namespace {name}",
        )
        yield name
    finally:
        handle.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


PROMETHEUS_ONE = json.dumps(
    {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}}
).encode()
"""A Prometheus query answer whose value is 1."""


@dataclass
class RecordedRequests:
    """A canned HTTP server's address, the answer it gives, and the path of every request it received, in order.

    Set ``status``, ``body`` and ``content_type`` at any time: every later request gets them.
    """

    address: str = ""
    paths: list[str] = field(default_factory=list)
    status: int = 200
    body: bytes = PROMETHEUS_ONE
    content_type: str = "application/json"


@contextlib.contextmanager
def canned_http_server(name: str = "canned-http") -> Iterator[RecordedRequests]:
    """A real HTTP listener on 127.0.0.1 that records every request and answers each with the same canned answer.

    Stands where a release points ``spec.analysis.prometheus.address``: in the
    SSRF tests what it recorded is exactly what reached it; in the tests of
    unusable answers it is the proxy or broken Prometheus that answers 200
    without data, or an error page of any size.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    recorded = RecordedRequests()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            recorded.paths.append(self.path)
            self.send_response(recorded.status)
            self.send_header("Content-Type", recorded.content_type)
            self.send_header("Content-Length", str(len(recorded.body)))
            self.end_headers()
            self.wfile.write(recorded.body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorded.address = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def recording_prometheus() -> contextlib.AbstractContextManager[RecordedRequests]:
    """A canned HTTP server that answers every request like a Prometheus query whose value is 1."""
    return canned_http_server("recording-prometheus")
