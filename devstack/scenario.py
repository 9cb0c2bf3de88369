"""The pieces of a rollout scenario on devstack: the operator as a process, a release, the golden set, traffic.

Why here and not in tests/e2e: ``make demo`` (devstack.demo) runs the same
scenario as the e2e tests but is not a test, and cannot import from
``tests/``.  Everything a scenario needs that is not an assertion lives in
this one module, so the demo and the test fixtures drive the operator the
same way (same flags, same Lease handling, same traffic wiring).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack import processes
from devstack.state import StateDir
from devstack.testing import Cluster, wait_for

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "crds"
CRD_NAME = "modelreleases.modelrelease.io"
TERMINAL_PHASES = frozenset({"Succeeded", "RolledBack", "Failed"})


def install_crd(cluster: Cluster, timeout: float = 60.0) -> None:
    """Apply ``crds/`` (server-side, so re-applying an older copy is never a conflict) and wait until served.

    Polls the CRD's own ``Established`` condition instead of ``kubectl wait``,
    which on a freshly started API server failed now and then without saying
    why; a timeout here names the conditions last seen.
    """
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))

    def established() -> list[dict[str, Any]] | None:
        found = cluster.kubectl("get", f"crd/{CRD_NAME}", "-o", "json", check=False)
        if found.returncode != 0:
            return None
        return crd_established(json.loads(found.stdout))

    wait_for(established, timeout, interval=0.3, message=f"CRD {CRD_NAME} Established")


def crd_established(crd: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The CRD's conditions once ``Established`` is True, else None (a CRD just created has ``conditions: null``)."""
    conditions: list[dict[str, Any]] = (crd.get("status") or {}).get("conditions") or []
    ok = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
    return conditions if ok else None


def apply_golden_set(cluster: Cluster, namespace: str) -> None:
    """The smoke stage's golden ConfigMap (``digits-golden``), trained at setup time, into ``namespace``."""
    from devstack.models import ensure_models

    cluster.kubectl("apply", "-n", namespace, "-f", str(ensure_models() / "digits-golden.yaml"))


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class OperatorProcess:
    """``python -m modelrelease.cli run`` against a devstack, as a child process with its log in a file.

    Its own Lease name and identity, so it never competes with another
    operator (another test session's, or one installed from the chart).
    ``kill()`` is SIGKILL: no clean shutdown, the Lease is left held, which
    is exactly what a crashed pod leaves behind.
    """

    cluster: Cluster
    namespaces: str
    log_path: Path
    identity: str
    lease_name: str
    metrics_port: int = field(default_factory=processes.free_port)
    prometheus_address: str | None = None
    lease_namespace: str = "default"
    lease_duration: float | None = None
    log_format: str = "text"
    extra_args: tuple[str, ...] = ()
    """More ``modelrelease run`` flags, e.g. the release policy's ``--allowed-image``."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def command(self) -> list[str]:
        prometheus = self.prometheus_address or self.cluster.prometheus_url
        return [
            sys.executable,
            "-m",
            "modelrelease.cli",
            "run",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--namespace={self.namespaces}",
            f"--metrics-port={self.metrics_port}",
            "--metrics-host=127.0.0.1",
            *([f"--prometheus-address={prometheus}"] if prometheus else []),
            f"--identity={self.identity}",
            f"--lease-name={self.lease_name}",
            f"--lease-namespace={self.lease_namespace}",
            *([f"--lease-duration={self.lease_duration:g}"] if self.lease_duration else []),
            f"--log-format={self.log_format}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 60.0) -> None:
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {' '.join(command)}\n".encode())
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env()
            )
        wait_for(self.healthy, timeout, interval=0.3, message="operator /healthz")

    def _env(self) -> dict[str, str]:
        """The cluster's environment, with this checkout's operator first on the path.

        The venv is shared and its editable install points at whichever
        checkout last ran ``make venv``; the operator run here must be the
        one next to this devstack code.
        """
        path = os.pathsep.join(filter(None, [str(REPO / "operator"), os.environ.get("PYTHONPATH")]))
        return {**self.cluster.env, "PYTHONPATH": path}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        """True once /healthz answers; raises if the process exited, so a crash is reported at once."""
        if not self.running:
            code = self.process.returncode if self.process is not None else None
            raise RuntimeError(f"operator exited ({code}):\n{self.log_tail()}")
        return _http_status(f"{self.metrics_url}/healthz") == 200

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text

    def rss_mb(self) -> float:
        assert self.process is not None
        return processes.rss_kib(self.process.pid) / 1024

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, the Lease is not released."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (kopf's clean shutdown, Lease released), SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def delete_lease(self) -> None:
        self.cluster.kubectl(
            "delete", "lease", self.lease_name, "-n", self.lease_namespace, "--ignore-not-found", check=False
        )

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no operator log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Release:
    """One ModelRelease, driven with kubectl as a user would; reads go through the API client (no fork per poll)."""

    cluster: Cluster
    namespace: str
    name: str = "digits"
    _api: Any = field(default=None, repr=False)

    def apply(self, manifest: dict[str, Any]) -> None:
        body = {**manifest, "metadata": {**manifest.get("metadata", {}), "namespace": self.namespace}}
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(body))

    def patch_spec(self, spec: dict[str, Any]) -> None:
        patch = json.dumps({"spec": spec})
        self.cluster.kubectl("patch", "modelrelease", self.name, "-n", self.namespace, "--type=merge", "-p", patch)

    def set_version(self, version: int) -> None:
        self.patch_spec({"model": {"version": version}})

    def annotate(self, key: str, value: str = "") -> None:
        """A manual request (``modelrelease.io/approve`` and so on): metadata only, never spec."""
        self.cluster.kubectl(
            "annotate", "--overwrite", "modelrelease", self.name, "-n", self.namespace, f"{key}={value}"
        )

    def _client(self) -> Any:
        if self._api is None:
            self._api = self.cluster.api_client()
        return self._api

    def get(self) -> dict[str, Any]:
        from kubernetes import client

        api: Any = client.CustomObjectsApi(self._client())
        found: dict[str, Any] = api.get_namespaced_custom_object(
            "modelrelease.io", "v1alpha1", self.namespace, "modelreleases", self.name
        )
        return found

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get().get("status") or {}
        return status

    def wait_phase(
        self, phase: str, timeout: float, also: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status()
            return status if status.get("phase") == phase and also(status) else None

        found = wait_for(reached, timeout, interval=0.5, message=f"{self.name} phase {phase}")
        assert found is not None
        return found

    def events(self) -> list[dict[str, Any]]:
        """Events about this release, oldest first (as ``kubectl get events -o json`` items)."""
        from kubernetes import client

        selector = f"involvedObject.kind=ModelRelease,involvedObject.name={self.name}"
        api: Any = client.CoreV1Api(self._client())
        response = api.list_namespaced_event(self.namespace, field_selector=selector, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def wait_events(self, *reasons: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Events about this release, oldest first, once one of each reason in ``reasons`` is among them.

        The operator posts a decision's events after the status write that
        records it (see apply.post_events), so a test that has just seen a
        phase must wait for the events, not read them at once.
        """

        def all_there() -> list[dict[str, Any]] | None:
            events = self.events()
            seen = {e.get("reason") for e in events}
            return events if all(reason in seen for reason in reasons) else None

        found = wait_for(all_there, timeout, interval=0.5, message=f"{self.name} events {', '.join(reasons)}")
        assert found is not None
        return found

    def deployment(self, version: int) -> dict[str, Any] | None:
        result = self.cluster.kubectl(
            "get", "deployment", f"{self.name}-v{version}", "-n", self.namespace, "-o", "json", check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 else None


def digits_release(name: str, namespace: str, version: int, replicas: int, **spec: Any) -> dict[str, Any]:
    """A ModelRelease of the digits model (``/models/digits``, the devstack model server image) with ``spec`` added.

    The one place the tests, the chaos trials and the demo spell the parts
    of a release they never vary; each passes its own stages and analysis.
    """
    serving: dict[str, Any] = {"image": "tensorflow/serving:2.18.0", "replicas": replicas, **spec.pop("serving", {})}
    return {
        "apiVersion": "modelrelease.io/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": "digits", "basePath": "/models/digits", "version": version},
            "serving": serving,
            **spec,
        },
    }


def load_manifest(path: Path, version: int) -> dict[str, Any]:
    """A ModelRelease manifest from a file, with ``spec.model.version`` set (what a Git commit would change)."""
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    manifest["spec"]["model"]["version"] = version
    return manifest


@contextlib.contextmanager
def traffic(
    cluster: Cluster,
    namespace: str,
    rate: float = 30.0,
    duration: float = 300.0,
    service: str = "digits",
    seed: int | None = None,
    http_route: str | None = None,
    virtual_service: str | None = None,
    headers: dict[str, str] | None = None,
    header_share: float = 0.0,
    model: str = "digits",
) -> Iterator[Any]:
    """Labelled gRPC traffic to ``service``'s ready pods, as kube-proxy spreads it, scraped by devstack's Prometheus.

    With ``http_route`` the traffic goes through devstack's Gateway (Traefik)
    instead, which follows that HTTPRoute (``devstack.traffic.GatewayResolver``);
    with ``virtual_service`` the generator itself follows that VirtualService
    (there is no Envoy on devstack); ``header_share`` of the requests carry ``headers`` (an A/B cohort).
    Yields the ``TrafficGenerator``; sending starts only once Prometheus
    scrapes it, so ``increase()`` over the run sees every request.
    """
    from devstack import cluster as devstack_cluster
    from devstack.traffic import TrafficConfig, running
    from devstack.traffic.kube import resolver_for_service

    if virtual_service is not None:
        resolver = resolver_for_service(
            cluster.kubeconfig, namespace, service, router="virtualservice", route_name=virtual_service, ttl=0.5
        )
    elif http_route is None:
        resolver = resolver_for_service(cluster.kubeconfig, namespace, service, router="replicas", ttl=0.5)
    else:
        record = StateDir(cluster.state_dir).read()
        gateway = devstack_cluster.gateway_address(record) if record is not None else None
        if gateway is None:
            raise RuntimeError("devstack runs no gateway (Traefik): `python -m devstack up` starts it")
        resolver = resolver_for_service(
            cluster.kubeconfig, namespace, service, router="gateway", route_name=http_route, ttl=0.5, gateway=gateway
        )
    config = TrafficConfig(
        model=model,
        rate=rate,
        duration=duration,
        seed=int(time.time()) % 1000 if seed is None else seed,
        headers=headers or {},
        header_share=header_share,
    )
    with running(
        config,
        resolver,
        register_prometheus=cluster.state_dir,
        job=f"traffic-{namespace}",
        scraped_by=cluster.prometheus_url,
    ) as generator:
        yield generator


def stop_prometheus(cluster: Cluster) -> str:
    """Stop the devstack's Prometheus (its whole process group, by the recorded pid); return its URL."""
    state = StateDir(cluster.state_dir)
    record = state.read()
    if record is None or not record.owns("prometheus") or not record.prometheus_url:
        raise RuntimeError(f"no running Prometheus recorded in {state.record_path}")
    processes.stop(record.pids["prometheus"])
    return record.prometheus_url


def start_prometheus(cluster: Cluster, timeout: float = 60.0) -> str:
    """Start the devstack's stopped Prometheus again on the same address, and wait until it answers.

    Why not ``devstack up``: it restarts a dead Prometheus, but checks the
    old port with a plain bind, which the stopped server's TIME_WAIT
    connections refuse for a minute, so it moves to a new port that neither
    the operator nor the cluster handle knows.  Prometheus itself binds with
    SO_REUSEADDR, so the old port is fine for it.
    """
    from devstack import prometheus

    state = StateDir(cluster.state_dir)
    with state.locked():
        record = state.read()
        if record is None or not record.prometheus_url:
            raise RuntimeError(f"no Prometheus recorded in {state.record_path}")
        if record.owns("prometheus"):
            raise RuntimeError(f"Prometheus (pid {record.pids['prometheus']}) is still running")
        listen = record.prometheus_url.removeprefix("http://")
        argv = prometheus.command(state.root, state.admin_kubeconfig, listen)
        record.remember("prometheus", processes.start(argv, state.log("prometheus"), cwd=state.root))
        state.write(record)
    url = record.prometheus_url
    wait_for(lambda: _http_status(f"{url}/-/ready") == 200, timeout, interval=0.3, message=f"Prometheus {url} ready")
    return url
