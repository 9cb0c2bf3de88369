"""`python -m devstack up|down|status|env|logs`: the local control plane as managed processes.

``up`` starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler
at once (each retries until its upstream answers, which is faster than starting
them one after another), waits for ``/readyz``, then starts the pod runner and
Prometheus if they are available, installs the Gateway API and Istio CRDs and
starts Traefik on loopback with its Gateway ``default/devstack``
(``devstack.gateway``; ``--no-gateway`` leaves them out).  Every process runs in its own process group
with its log in ``<state>/logs/``; ``cluster.json`` records the pids so that
``down`` stops exactly those and nothing else.  Each ``up`` starts from an empty
etcd (the PKI and ports are kept, so an old kubeconfig still works).

Networking: pods get 127.x addresses from the pod runner.  Services get
ClusterIPs from ``SERVICE_CIDR``, a block inside 127.0.0.0/8 that nothing
listens on; there is no kube-proxy, so a ClusterIP is bookkeeping only, and a
process that dials one by mistake gets "connection refused" on this machine
instead of sending packets out of it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack import audit, build, kubeconfig, pki, processes
from devstack.state import ClusterRecord, StateDir, default_state_dir

# 127.255/16 is outside the pod runner's per-session 127.1-254.x.x claims; services get its lower half,
# kwok's fake pods the upper half (devstack.kwok.POD_CIDR).
SERVICE_CIDR = "127.255.0.0/17"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
POD_RUNNER_NODE = "devstack-node"
READY_TIMEOUT = 120.0
CONFIG_REVISION = 4
# Stopped in reverse: whatever depends on the API server goes first, etcd last.
START_ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "podrunner",
    "prometheus",
    "traefik",
    "kwok",
)
CONTROLLERS = [
    "clusterrole-aggregation-controller",
    "cronjob-controller",
    "daemonset-controller",
    "deployment-controller",
    "disruption-controller",
    # Endpoints and EndpointSlices accept the pods' 127.x addresses only because devstack's
    # kube-apiserver is built with one validation check removed (devstack.build.ALLOW_LOOPBACK_ENDPOINTS).
    "endpoints-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "job-controller",
    "namespace-controller",
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
    "replicaset-controller",
    "resourcequota-controller",
    "root-ca-certificate-publisher-controller",
    "service-cidr-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "statefulset-controller",
    "taint-eviction-controller",
    "ttl-after-finished-controller",
]


class DevstackError(RuntimeError):
    """Something the user must fix: a missing binary, a port, a component that died at start."""


def first_service_ip() -> str:
    return str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))


def _binary(name: str) -> Path:
    path = build.bin_dir() / name
    if not path.exists():
        raise DevstackError(f"{path} is missing; run `make setup` (python -m devstack setup) first")
    return path


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    prometheus: int
    traefik: int

    @classmethod
    def pick(cls, previous: dict[str, int]) -> Ports:
        """Reuse the ports of the last run where still free (kubeconfigs stay valid), else new ones."""
        chosen: dict[str, int] = {}
        for name in cls.__dataclass_fields__:
            port = previous.get(name)
            if port is None or port in chosen.values() or not processes.port_is_free(port):
                port = processes.free_port()
                while port in chosen.values():
                    port = processes.free_port()
            chosen[name] = port
        return cls(**chosen)


def _etcd_argv(state: StateDir, ports: Ports) -> list[str]:
    client, peer = f"http://127.0.0.1:{ports.etcd_client}", f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(_binary("etcd")),
        "--name=devstack",
        f"--data-dir={state.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=devstack={peer}",
        # A throwaway test cluster: durability is not worth the fsync latency on a shared disk.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_argv(state: StateDir, ports: Ports, certs: pki.PKI) -> list[str]:
    return [
        str(_binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={state.root / 'apiserver-certs'}",
        f"--tls-cert-file={certs.serving_cert}",
        f"--tls-private-key-file={certs.serving_key}",
        f"--client-ca-file={certs.ca_cert}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={certs.service_account_pub}",
        f"--service-account-signing-key-file={certs.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Lets controller-manager and scheduler load a complete extension-apiserver-authentication ConfigMap.
        f"--requestheader-client-ca-file={certs.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
        # Who wrote what, and what each Lease said: the chaos trials' evidence (devstack.audit).
        *audit.apiserver_args(state.root, state.logs),
    ]


def _controller_manager_argv(state: StateDir, ports: Ports, certs: pki.PKI, config: Path) -> list[str]:
    return [
        str(_binary("kube-controller-manager")),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={state.root / 'controller-manager-certs'}",
        "--leader-elect=false",
        f"--service-account-private-key-file={certs.service_account_key}",
        f"--root-ca-file={certs.ca_cert}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--controllers={','.join(CONTROLLERS)}",
        # The default 20 QPS makes a 300-replica scale test wait on client-side throttling, not on the cluster.
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--profiling=false",
        "--v=1",
    ]


def _scheduler_argv(state: StateDir, ports: Ports, config: Path) -> list[str]:
    return [
        str(_binary("kube-scheduler")),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={state.root / 'scheduler-certs'}",
        "--leader-elect=false",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--profiling=false",
        "--v=1",
    ]


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _podrunner_argv(state: StateDir) -> list[str]:
    return [
        sys.executable,
        "-m",
        "devstack.podrunner",
        "--kubeconfig",
        str(state.admin_kubeconfig),
        "--node-name",
        POD_RUNNER_NODE,
        "--state-dir",
        str(state.root / "podrunner"),
    ]


def _prometheus_argv(state: StateDir, listen: str) -> list[str] | None:
    """The Prometheus command from devstack.prometheus, or None (with a warning) when it cannot run."""
    if not _module_available("devstack.prometheus"):
        _warn("devstack.prometheus does not exist yet: starting without Prometheus")
        return None
    from devstack import prometheus  # type: ignore[attr-defined,unused-ignore]

    command: Callable[[Path, Path, str], list[str]] | None = getattr(prometheus, "command", None)
    if command is None:
        _warn("devstack.prometheus has no command(): starting without Prometheus")
        return None
    try:
        argv = [str(part) for part in command(state.root, state.admin_kubeconfig, listen)]
    except Exception as exc:  # another component's bug must not take the control plane down
        _warn(f"devstack.prometheus.command() failed ({exc}): starting without Prometheus")
        return None
    if not argv or shutil.which(argv[0]) is None:
        _warn(f"prometheus is not installed ({argv[:1]}): starting without Prometheus; run `make setup`")
        return None
    return argv


def _warn(message: str) -> None:
    print(f"devstack: warning: {message}", file=sys.stderr, flush=True)


def _say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


def _readyz(record: ClusterRecord, state: StateDir) -> tuple[int, str]:
    port = record.ports.get("apiserver")
    if port is None:
        return 0, "no apiserver port recorded"
    return kubeconfig.get("127.0.0.1", port, "/readyz", pki.PKI(state.pki), pki.ADMIN)


def _live(record: ClusterRecord) -> dict[str, bool]:
    return {name: record.owns(name) for name in record.pids}


def config_fingerprint() -> str:
    """Everything about how `up` configures a cluster that a test may depend on; bump CONFIG_REVISION by hand."""
    return f"r{CONFIG_REVISION} {build.K8S_VERSION} {SERVICE_CIDR} {','.join(CONTROLLERS)}"


def is_running(state: StateDir, patience: float = 30.0) -> bool:
    """True if every control-plane process lives and /readyz answers OK within ``patience`` seconds.

    The patience matters: on a busy shared machine a live API server may answer slowly, and treating it
    as dead would make the next `up` restart the cluster under another test session's feet.
    """
    record = state.read()
    if record is None:
        return False
    live = _live(record)
    core = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    if not all(live.get(name, False) for name in core):
        return False
    deadline = time.monotonic() + patience
    while _readyz(record, state)[0] != 200:
        if time.monotonic() >= deadline or not record.owns("kube-apiserver"):
            return False
        time.sleep(0.5)
    return True


def _check_alive(record: ClusterRecord, state: StateDir, names: tuple[str, ...]) -> None:
    for name in names:
        if not record.owns(name):
            pid = record.pids[name]
            ended = "is now another program" if processes.alive(pid) else processes.how_it_ended(pid)
            tail = tail_log(state, name, 20)
            raise DevstackError(
                f"{name} exited during start (pid {pid} {ended}); last lines of {state.log(name)}:\n{tail}"
            )


def _wait_ready(record: ClusterRecord, state: StateDir, names: tuple[str, ...], deadline: float) -> None:
    last = (0, "")
    while time.monotonic() < deadline:
        _check_alive(record, state, names)
        last = _readyz(record, state)
        if last[0] == 200:
            return
        time.sleep(0.1)
    raise DevstackError(f"kube-apiserver not ready after {READY_TIMEOUT:.0f} s: {last[0]} {last[1][-2000:]}")


def _wait_healthy(record: ClusterRecord, state: StateDir, names: tuple[str, ...], deadline: float) -> None:
    """Wait until each component answers its own /healthz, so a bad flag fails `up` instead of a later test."""
    port_of = {"kube-controller-manager": "controller_manager", "kube-scheduler": "scheduler"}
    pending = list(names)
    while pending and time.monotonic() < deadline:
        _check_alive(record, state, names)
        for name in list(pending):
            if _component_healthy(record.ports[port_of[name]]):
                pending.remove(name)
        if pending:
            time.sleep(0.1)
    if pending:
        raise DevstackError(f"{', '.join(pending)} not healthy after {READY_TIMEOUT:.0f} s; see {state.logs}")


def _component_healthy(port: int) -> bool:
    """GET /healthz on a component's self-signed port (always allowed without authentication)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _start(
    record: ClusterRecord, state: StateDir, name: str, argv: list[str], env: dict[str, str] | None = None
) -> None:
    record.remember(name, processes.start(argv, state.log(name), env=env, cwd=state.root))
    state.write(record)


def up(
    state: StateDir | None = None,
    podrunner: bool = True,
    prometheus: bool = True,
    started_by: str = "cli",
    gateway: bool = True,
) -> ClusterRecord:
    """Start the devstack in ``state`` unless it already runs; return its record."""
    state = state or StateDir(default_state_dir())
    with state.locked():
        existing = state.read()
        if existing is not None and is_running(state):
            outdated = existing.fingerprint != config_fingerprint()
            if not outdated or state.live_users():
                if outdated:
                    _warn("this devstack was started by older devstack code; in use, so reused: `down` and `up` it")
                _say(f"already running: {existing.api_server} (kubeconfig {existing.kubeconfig})")
                _start_addons(existing, state, podrunner, prometheus, only_missing=True, gateway=gateway)
                return existing
            _say("the running devstack was configured by older devstack code and nobody uses it: restarting it")
        if existing is not None:
            _say("a previous devstack is partly running or stale: stopping what is left of it first")
            _stop_all(existing, state)
            state.forget()
        try:
            return _up_locked(state, podrunner, prometheus, started_by, existing, gateway)
        except DevstackError as exc:
            # A port picked free can be taken by another program before the component binds it: only
            # that, named in the component's own log, is worth one more try with new ports.
            if "address already in use" not in str(exc):
                raise
            _warn(f"start failed, retrying once with new ports: {str(exc).splitlines()[0]}")
            return _up_locked(state, podrunner, prometheus, started_by, None, gateway)


def _up_locked(
    state: StateDir,
    podrunner: bool,
    prometheus: bool,
    started_by: str,
    previous: ClusterRecord | None,
    gateway: bool = True,
) -> ClusterRecord:
    t0 = time.monotonic()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        _binary(name)
    ports = Ports.pick(previous.ports if previous else {})
    # Every `up` starts from an empty etcd: objects left by an earlier run (fake nodes whose heartbeats
    # stopped, half-deleted namespaces) would make the next test session slow and order-dependent.
    shutil.rmtree(state.etcd_data, ignore_errors=True)
    # Logs of the previous run are kept once, so they neither grow forever nor vanish right after a failure.
    if state.logs.exists():
        previous_logs = state.root / "logs.previous"
        shutil.rmtree(previous_logs, ignore_errors=True)
        state.logs.rename(previous_logs)
    certs = pki.ensure(state.pki, first_service_ip())
    server = f"https://127.0.0.1:{ports.apiserver}"
    admin = kubeconfig.write(state.admin_kubeconfig, certs, pki.ADMIN, server)
    kcm_config = kubeconfig.write(state.root / "controller-manager.kubeconfig", certs, pki.CONTROLLER_MANAGER, server)
    scheduler_config = kubeconfig.write(state.root / "scheduler.kubeconfig", certs, pki.SCHEDULER, server)
    record = ClusterRecord(
        api_server=server,
        kubeconfig=str(admin),
        ports=vars(ports).copy(),
        started_by=started_by,
        fingerprint=config_fingerprint(),
    )
    try:
        _start(record, state, "etcd", _etcd_argv(state, ports))
        _start(record, state, "kube-apiserver", _apiserver_argv(state, ports, certs))
        _wait_ready(record, state, ("etcd", "kube-apiserver"), time.monotonic() + READY_TIMEOUT)
        # Only now: both exit at once if RBAC's bootstrap roles (part of /readyz) are not there yet.
        _start(record, state, "kube-controller-manager", _controller_manager_argv(state, ports, certs, kcm_config))
        _start(record, state, "kube-scheduler", _scheduler_argv(state, ports, scheduler_config))
        _wait_healthy(record, state, ("kube-controller-manager", "kube-scheduler"), time.monotonic() + READY_TIMEOUT)
        record.ready_seconds = round(time.monotonic() - t0, 2)
        _say(f"control plane ready in {record.ready_seconds:.1f} s at {server}")
        state.write(record)
        _start_addons(record, state, podrunner, prometheus, only_missing=False, gateway=gateway)
    except BaseException:
        _warn("start failed: stopping what was started")
        _stop_all(record, state)
        state.forget()
        raise
    _say(f"up in {time.monotonic() - t0:.1f} s; state in {state.root}")
    return record


def _start_addons(
    record: ClusterRecord, state: StateDir, podrunner: bool, prometheus: bool, only_missing: bool, gateway: bool = True
) -> None:
    """Start the pod runner, Prometheus and Traefik; on a running devstack, restart whichever of them has died."""
    if gateway and not (only_missing and record.owns("traefik")):
        if only_missing:
            _say("traefik not running: starting it")
        _start_gateway(record, state)
    if podrunner and not (only_missing and record.owns("podrunner")):
        if only_missing:
            _say("pod runner not running: starting it")
        _start_podrunner(record, state)
    if prometheus and not (only_missing and record.owns("prometheus")):
        port = record.ports.get("prometheus") or processes.free_port()
        if not processes.port_is_free(port):
            port = processes.free_port()
        argv = _prometheus_argv(state, f"127.0.0.1:{port}")
        if argv is None:
            return
        record.ports["prometheus"] = port
        _start(record, state, "prometheus", argv)
        record.prometheus_url = f"http://127.0.0.1:{port}"
        state.write(record)
        if not _wait_prometheus(record, state):
            record.prometheus_url = None
            state.write(record)


def _kubectl(state: StateDir, *args: str, stdin: str | None = None) -> None:
    result = subprocess.run(
        [str(_binary("kubectl")), f"--kubeconfig={state.admin_kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT,
    )
    if result.returncode != 0:
        raise DevstackError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")


def _start_gateway(record: ClusterRecord, state: StateDir) -> None:
    """Install the Gateway API and Istio CRDs, start Traefik on loopback and give it its Gateway.

    ``make setup`` builds Traefik and fetches the CRDs (devstack.gateway); a
    missing build fails ``up`` rather than giving a cluster without a gateway.
    """
    from devstack import gateway

    if not gateway.traefik_binary().exists():
        raise DevstackError(f"{gateway.traefik_binary()} is missing; run `make setup` (python -m devstack setup) first")
    try:
        crds = gateway.ensure_crds()
    except gateway.GatewayBuildError as exc:
        raise DevstackError(str(exc)) from exc
    _kubectl(state, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
    _kubectl(state, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    port = record.ports.get("traefik") or processes.free_port()
    if not processes.port_is_free(port):
        port = processes.free_port()
    record.ports["traefik"] = port
    argv = gateway.traefik_argv(state.root, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    env["KUBECONFIG"] = str(state.admin_kubeconfig)
    _start(record, state, "traefik", argv, env=env)
    objects = "\n---\n".join(json.dumps(o) for o in gateway.gateway_objects(port))
    _kubectl(state, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=objects)
    deadline = time.monotonic() + 30.0
    while processes.port_is_free(port):
        _check_alive(record, state, ("traefik",))
        if time.monotonic() > deadline:
            raise DevstackError(f"traefik did not listen on 127.0.0.1:{port}; see {state.log('traefik')}")
        time.sleep(0.1)


def gateway_address(record: ClusterRecord) -> str | None:
    """``127.0.0.1:<port>`` where Traefik serves the devstack Gateway's listener, if it runs."""
    port = record.ports.get("traefik")
    return f"127.0.0.1:{port}" if port and record.owns("traefik") else None


def _start_podrunner(record: ClusterRecord, state: StateDir) -> None:
    if not _module_available("devstack.podrunner.__main__"):
        _warn("devstack.podrunner does not exist yet: no pod runner, pods will stay Pending (kwok nodes aside)")
        return
    env = dict(os.environ, KUBECONFIG=str(state.admin_kubeconfig))
    _start(record, state, "podrunner", _podrunner_argv(state), env=env)


def _wait_prometheus(record: ClusterRecord, state: StateDir, timeout: float = 30.0) -> bool:
    """Wait briefly for Prometheus to answer; False if it exited.  A slow Prometheus is a warning, not a failed `up`."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not record.owns("prometheus"):
            _warn(f"prometheus exited; see {state.log('prometheus')}:\n{tail_log(state, 'prometheus', 10)}")
            return False
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{record.prometheus_url}/-/ready", timeout=1) as response,
        ):
            if response.status == 200:
                return True
        time.sleep(0.2)
    _warn(f"prometheus not ready after {timeout:.0f} s; continuing")
    return True


def _stop_all(record: ClusterRecord, state: StateDir) -> list[str]:
    stopped = []
    order = [name for name in reversed(START_ORDER) if name in record.pids]
    order += [name for name in record.pids if name not in order]
    for name in order:
        if record.owns(name):
            # The pod runner stops its pods' processes itself: give it their grace periods.
            processes.stop(record.pids[name], grace=40.0 if name == "podrunner" else 10.0)
            stopped.append(name)
        elif processes.group_members(record.pids[name]):
            processes.stop(record.pids[name], grace=2.0)
            stopped.append(name)
        if name == "podrunner":
            _kill_orphaned_pods(state)
    return stopped


def _kill_orphaned_pods(state: StateDir) -> None:
    """Pod processes run in their own sessions; if the pod runner could not stop them, they are ours to stop."""
    if not _module_available("devstack.podrunner.leftovers"):
        return
    from devstack.podrunner import leftovers  # type: ignore[attr-defined,unused-ignore]

    killed = leftovers.kill(state.root / "podrunner")
    if killed:
        _warn(f"stopped {len(killed)} pod process(es) the pod runner left behind: {killed}")


def down(state: StateDir | None = None) -> list[str]:
    """Stop every process this devstack recorded; return the components that were running."""
    state = state or StateDir(default_state_dir())
    with state.locked():
        return down_locked(state)


def down_locked(state: StateDir) -> list[str]:
    """`down` for a caller that already holds ``state.locked()``."""
    record = state.read()
    if record is None:
        return []
    stopped = _stop_all(record, state)
    state.forget()
    return stopped


def tail_log(state: StateDir, component: str, lines: int = 50) -> str:
    path = state.log(component)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * lines))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def env_vars(state: StateDir) -> dict[str, str]:
    """The environment a shell or a test needs to talk to this devstack with the built kubectl."""
    record = state.read()
    config = record.kubeconfig if record else str(state.admin_kubeconfig)
    values = {
        "KUBECONFIG": config,
        "MODELRELEASE_KUBECONFIG": config,
        "PATH": f"{build.bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if record and record.prometheus_url:
        values["PROMETHEUS_URL"] = record.prometheus_url
    return values


# ---- command line -------------------------------------------------------------------------------------------------


def _state_from(args: argparse.Namespace) -> StateDir:
    return StateDir(Path(args.state_dir) if args.state_dir else default_state_dir())


def _cmd_up(args: argparse.Namespace) -> int:
    if args.kwok_nodes < 0:
        raise DevstackError(f"--kwok-nodes must be 0 or more, not {args.kwok_nodes}")
    record = up(
        _state_from(args),
        podrunner=not args.no_podrunner,
        prometheus=not args.no_prometheus,
        gateway=not args.no_gateway,
    )
    if args.kwok_nodes:
        from devstack import kwok

        kwok.ensure(_state_from(args), args.kwok_nodes)
    print(f"export KUBECONFIG={record.kubeconfig}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state = _state_from(args)
    stopped = down(state)
    _say(f"stopped {', '.join(stopped)}" if stopped else f"nothing running in {state.root}")
    if args.purge:
        shutil.rmtree(state.root, ignore_errors=True)
        _say(f"removed {state.root}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    state = _state_from(args)
    record = state.read()
    if record is None:
        print(f"devstack: not running (no {state.record_path})")
        return 1
    for name, alive in _live(record).items():
        print(f"{name:<26} pid {record.pids[name]:<8} {'running' if alive else 'STOPPED'}")
    code, body = _readyz(record, state)
    print(f"{'readyz':<26} {code} {body.strip()[:60]}")
    print(f"{'apiServer':<26} {record.api_server}")
    print(f"{'kubeconfig':<26} {record.kubeconfig}")
    print(f"{'prometheusUrl':<26} {record.prometheus_url or '-'}")
    return 0 if code == 200 else 1


def _cmd_env(args: argparse.Namespace) -> int:
    for key, value in env_vars(_state_from(args)).items():
        print(f"export {key}={value}")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    state = _state_from(args)
    names = [args.component] if args.component else sorted(p.stem for p in state.logs.glob("*.log"))
    if not names:
        print(f"devstack: no logs in {state.logs}", file=sys.stderr)
        return 1
    for name in names:
        if not state.log(name).exists():
            known = ", ".join(sorted(p.stem for p in state.logs.glob("*.log"))) or "none"
            print(f"devstack: no log for {name!r} (known: {known})", file=sys.stderr)
            return 1
        print(f"==> {state.log(name)} <==")
        print(tail_log(state, name, args.lines))
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def command(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--state-dir", help="state directory (default $MODELRELEASE_DEVSTACK_DIR or the cache)")
        parser.set_defaults(func=func)
        return parser

    up_parser = command("up", "start the local cluster (idempotent)", _cmd_up)
    up_parser.add_argument("--no-podrunner", action="store_true", help="do not start the pod runner")
    up_parser.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    up_parser.add_argument(
        "--no-gateway", action="store_true", help="do not install the Gateway API/Istio CRDs nor start Traefik"
    )
    up_parser.add_argument("--kwok-nodes", type=int, default=0, help="also start kwok with this many fake nodes")
    down_parser = command("down", "stop every process the devstack started", _cmd_down)
    down_parser.add_argument("--purge", action="store_true", help="also delete the state directory")
    command("status", "show the processes and /readyz", _cmd_status)
    command("env", "print shell exports for KUBECONFIG and PATH", _cmd_env)
    logs_parser = command("logs", "print the tail of the component logs", _cmd_logs)
    logs_parser.add_argument("component", nargs="?", help="etcd, kube-apiserver, podrunner, ... (default: all)")
    logs_parser.add_argument("-n", "--lines", type=int, default=50)
