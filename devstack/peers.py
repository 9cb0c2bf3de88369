"""The peers we compare against, Flagger and Argo Rollouts, built from their Go modules and run on devstack.

Why: issue 17 asks for a head-to-head measured on the same cluster, models,
traffic and Prometheus, not asserted.  Both peers are Go programs; like the
control plane, Traefik and Prometheus they are built from their modules
through the Go module proxy and cached by version under
``~/.cache/modelrelease/bin/<tool>/<version>/`` with their CRDs next to them.

How they are built (measured facts, see docs/benchmarks.md "Head to head"):

- **Flagger v1.36.1** (``github.com/fluxcd/flagger``, no ``replace`` lines):
  ``go build ./cmd/flagger`` with the local toolchain; its Canary,
  MetricTemplate and AlertProvider CRDs are ``artifacts/flagger/crd.yaml``.
- **Argo Rollouts v1.10.2** (``github.com/argoproj/argo-rollouts``): its
  go.mod asks for Go >= 1.26.10, so ``GOTOOLCHAIN=go1.27.3`` makes the go
  command fetch that toolchain from the module proxy (about 76 MB, once);
  built inside its own module directory (``GOWORK=off``) because its go.mod
  has ``replace`` lines a scratch module would not inherit.  Its CRDs are
  ``manifests/crds/*-crd.yaml``.  Its native Traefik router edits a
  ``TraefikService``; Traefik's own CRDs (``traefik.io``) come from the
  Traefik module devstack already builds (``devstack.gateway``).
- both with ``-trimpath``, ``-s -w`` and the version ldflags each project's
  Makefile sets, at ``nice 10`` and ``-p 2``, timed by ``/usr/bin/time -v``
  (wall, CPU, peak RSS in ``build-measurements.json``, printed by setup).

How they run on devstack: as processes with the devstack's admin
kubeconfig, each confined to one namespace, each with its leader election
on (Flagger's ``flagger-leader-election`` Lease, Argo Rollouts'
``argo-rollouts-controller-lock``).  Flagger drives the devstack Gateway's
HTTPRoutes (``-mesh-provider=gatewayapi:v1``) and reads devstack's
Prometheus (``-metrics-server``).  Argo Rollouts drives a ``TraefikService``'s
weights; a second Traefik, with only the Kubernetes CRD provider, serves the
``IngressRoute`` that points at it (devstack's own Traefik runs only the
Gateway provider).  ``objects`` builds the model-server workloads both act
on: the same TF-Serving-compatible pods, ``ModelServerConfig`` pinning one
version, that the operator's Deployments run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack import cache_root, processes
from devstack.gateway import TRAEFIK_MODULE, TRAEFIK_VERSION, parse_time_v, traefik_binary


class PeerBuildError(RuntimeError):
    """A peer could not be fetched or built."""


@dataclass(frozen=True)
class Peer:
    """One peer controller: where its source is, how to build it, where its CRDs are in its module."""

    name: str
    module: str
    version: str
    package: str
    binary: str
    toolchain: str
    """``GOTOOLCHAIN``: ``local``, or a release the go command fetches from the module proxy."""
    version_ldflags: tuple[str, ...]
    crd_globs: tuple[str, ...]

    def directory(self) -> Path:
        return cache_root() / "bin" / self.name / self.version

    def path(self) -> Path:
        return self.directory() / self.binary

    def crds(self) -> Path:
        return self.directory() / "crds"

    def recipe(self) -> str:
        flags = " ".join(self.version_ldflags)
        return (
            f"{self.module}@{self.version} {self.package} -trimpath -s -w {flags} "
            f"GOTOOLCHAIN={self.toolchain} GOWORK=off CGO_ENABLED=0 crds={','.join(self.crd_globs)}\n"
        )

    def current(self) -> bool:
        stamp = self.directory() / ".recipe"
        return self.path().exists() and stamp.exists() and stamp.read_text() == self.recipe()

    def env(self) -> dict[str, str]:
        return dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOTOOLCHAIN=self.toolchain, GOFLAGS="-mod=readonly")


FLAGGER = Peer(
    name="flagger",
    module="github.com/fluxcd/flagger",
    version="v1.36.1",
    package="./cmd/flagger",
    binary="flagger",
    toolchain="local",
    version_ldflags=("-X github.com/fluxcd/flagger/pkg/version.REVISION=v1.36.1",),
    crd_globs=("artifacts/flagger/crd.yaml",),
)
_ARGO_VERSION = "github.com/argoproj/argo-rollouts/utils/version"
ARGO_ROLLOUTS = Peer(
    name="argo-rollouts",
    module="github.com/argoproj/argo-rollouts",
    version="v1.10.2",
    package="./cmd/rollouts-controller",
    binary="rollouts-controller",
    toolchain="go1.27.3",
    # What its Makefile sets; with a tag and a clean tree, `--version` prints the tag.
    version_ldflags=(
        f"-X {_ARGO_VERSION}.version=1.10.2",
        f"-X {_ARGO_VERSION}.buildDate=1970-01-01T00:00:00Z",
        f"-X {_ARGO_VERSION}.gitCommit=v1.10.2",
        f"-X {_ARGO_VERSION}.gitTag=v1.10.2",
        f"-X {_ARGO_VERSION}.gitTreeState=clean",
    ),
    crd_globs=("manifests/crds/*-crd.yaml",),
)
PEERS = (FLAGGER, ARGO_ROLLOUTS)
TRAEFIK_CRD_FILE = "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"


def module_dir(module: str, version: str, toolchain: str = "local") -> Path:
    """The module's source in the Go module cache, downloaded through the proxy when missing.

    ``toolchain`` matters: the go command refuses to download a module whose
    go.mod asks for a newer Go than the one running (Argo Rollouts asks for
    1.26.10) unless ``GOTOOLCHAIN`` names one that may be fetched.
    """
    from devstack import gateway

    try:
        return gateway.module_dir(module, version, toolchain)
    except gateway.GatewayBuildError as error:
        raise PeerBuildError(str(error)) from error


def _copy_crds(peer: Peer, source: Path) -> None:
    target = peer.crds()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for pattern in peer.crd_globs:
        for path in sorted(source.glob(pattern)):
            (target / path.name).write_text(path.read_text())
    if not list(target.glob("*.yaml")):
        raise PeerBuildError(f"no CRDs matching {peer.crd_globs} in {source}")


def build_peer(peer: Peer, force: bool = False, strip: bool = True) -> dict[str, float]:
    """Build ``peer`` once per version, with its CRDs; returns its measurements (empty when it was already built).

    ``strip`` False builds without ``-s -w`` into a scratch file (the cache
    is left alone): only to measure what stripping saves at link time.
    """
    if not force and strip and peer.current():
        return {}
    if shutil.which("go") is None:
        raise PeerBuildError("the Go toolchain is not on PATH; install Go >= 1.25 first")
    started = time.monotonic()
    source = module_dir(peer.module, peer.version, peer.toolchain)
    out = peer.directory()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{peer.binary}.tmp"
    report = out / ("build-time.txt" if strip else "build-time-unstripped.txt")
    ldflags = " ".join([*(["-s", "-w"] if strip else []), *peer.version_ldflags])
    cmd = ["go", "build", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), peer.package]
    if shutil.which("nice"):  # a build shares the machine with running clusters and tests
        cmd = ["nice", "-n", "10", *cmd]
    timed = ["/usr/bin/time", "-v", "-o", str(report), *cmd] if Path("/usr/bin/time").exists() else cmd
    print(f"+ (in {source}, GOTOOLCHAIN={peer.toolchain})", " ".join(cmd), flush=True)
    try:
        subprocess.run(timed, cwd=source, env=peer.env(), check=True)
    except subprocess.CalledProcessError as error:
        raise PeerBuildError(f"{peer.name} {peer.version}: go build failed ({error.returncode})") from error
    measured = parse_time_v(report.read_text()) if report.exists() else {}
    measured["wall_seconds_with_download"] = time.monotonic() - started
    measured.setdefault("wall_seconds", measured["wall_seconds_with_download"])
    measured["binary_mib"] = tmp.stat().st_size / 2**20
    if not strip:
        tmp.unlink()
        return measured
    tmp.rename(peer.path())
    _copy_crds(peer, source)
    (out / ".recipe").write_text(peer.recipe())
    (out / "build-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")
    return measured


def traefik_crds() -> Path:
    """Traefik's own CRDs (``traefik.io``: IngressRoute, TraefikService, ...) at the version devstack builds."""
    target = cache_root() / "crds" / f"traefik-{TRAEFIK_VERSION}"
    path = target / "traefik-crds.yaml"
    if path.exists():
        return path
    source = module_dir(TRAEFIK_MODULE, TRAEFIK_VERSION) / TRAEFIK_CRD_FILE
    if not source.exists():
        raise PeerBuildError(f"{source} is missing from the Traefik module")
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / ".traefik-crds.tmp"
    tmp.write_text(source.read_text())
    tmp.rename(path)
    return path


def setup() -> dict[str, dict[str, float]]:
    """``make setup`` (and ``setup-peers``): both peers and Traefik's CRDs; what was built, measured (empty if cached)."""
    traefik_crds()
    return {peer.name: measured for peer in PEERS if (measured := build_peer(peer))}


def describe(name: str, measured: dict[str, float]) -> str:
    return (
        f"{name} built in {measured['wall_seconds']:.0f} s wall ({measured['wall_seconds_with_download']:.0f} s with "
        f"the module download), {measured.get('cpu_seconds', 0):.0f} CPU-s, peak RSS "
        f"{measured.get('peak_rss_mib', 0):.0f} MiB, binary {measured.get('binary_mib', 0):.0f} MiB"
    )


# --- running them on devstack --------------------------------------------------------------------------------------


def crd_files(wanted: Sequence[Peer] = PEERS) -> list[Path]:
    """Every CRD file ``wanted`` need on the cluster; a missing build is an error that says what to run."""
    files: list[Path] = []
    for peer in wanted:
        if not peer.current():
            raise PeerBuildError(f"{peer.path()} is missing or stale; run `make setup` first")
        files += sorted(peer.crds().glob("*.yaml"))
    return [*files, traefik_crds()]


def crd_names(files: Sequence[Path]) -> list[str]:
    """The CRD names in ``files`` (3 MB of YAML: libyaml's loader reads it in 0.4 s, pure Python in 4.5 s)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    names = []
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=loader):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
    return names


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class PeerProcess:
    """A peer controller as a child process (own process group) with its log in a file."""

    name: str
    argv: list[str]
    log_path: Path
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    started: processes.Started | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        self.started = processes.start(self.argv, self.log_path, env={**env, **self.env})

    @property
    def pid(self) -> int:
        if self.started is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.started.pid

    def running(self) -> bool:
        return self.started is not None and processes.alive(self.started.pid)

    def healthy(self) -> bool:
        """True once the health endpoint answers 200; raises if the process exited (a crash reported at once)."""
        import urllib.error
        import urllib.request

        if not self.running():
            raise RuntimeError(f"{self.name} exited ({processes.how_it_ended(self.pid)}):\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def rss_mib(self) -> float:
        return processes.rss_kib(self.pid) / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.started is not None:
            processes.stop(self.started.pid)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return f"(no {self.name} log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def flagger_process(kubeconfig: Path, namespace: str, prometheus_url: str, log_dir: Path) -> PeerProcess:
    """Flagger watching ``namespace`` only, shifting HTTPRoute weights, reading devstack's Prometheus.

    Leader election on, its Lease in ``namespace``; config tracking off (the
    model version is chosen by a ConfigMap per version that both the primary
    and the canary Deployment name themselves, never copied).
    """
    port = processes.free_port()
    argv = [
        str(FLAGGER.path()),
        f"-kubeconfig={kubeconfig}",
        "-mesh-provider=gatewayapi:v1",
        f"-metrics-server={prometheus_url}",
        f"-namespace={namespace}",
        "-enable-leader-election=true",
        f"-leader-election-namespace={namespace}",
        f"-port={port}",
        "-log-level=info",
        "-zap-encoding=console",
        "-enable-config-tracking=false",
        "-selector-labels=app",
    ]
    return PeerProcess("flagger", argv, log_dir / "flagger.log", f"http://127.0.0.1:{port}/healthz")


def argo_rollouts_process(kubeconfig: Path, namespace: str, log_dir: Path) -> PeerProcess:
    """Argo Rollouts in namespaced mode in ``namespace`` (its Lease there), with its native Traefik router.

    ``--namespace`` is what makes it act on ``namespace``: with
    ``--namespaced`` it watches the namespace of its kubeconfig context (the
    kubectl ``--namespace`` override, else the context's, else ``default``),
    while its Lease and notification ConfigMap go to ``POD_NAMESPACE``.
    Without the flag it leads in ``namespace`` and watches ``default``.
    """
    healthz, metrics = processes.free_port(), processes.free_port()
    argv = [
        str(ARGO_ROLLOUTS.path()),
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        "--namespaced",
        f"--healthzPort={healthz}",
        f"--metricsPort={metrics}",
        "--traefik-api-group=traefik.io",
        "--traefik-api-version=traefik.io/v1alpha1",
        "--leader-elect=true",
        "--loglevel=info",
    ]
    return PeerProcess(
        "argo-rollouts",
        argv,
        log_dir / "argo-rollouts.log",
        f"http://127.0.0.1:{healthz}/healthz",
        env={"POD_NAMESPACE": namespace},
    )


def traefik_crd_process(kubeconfig: Path, namespace: str, log_dir: Path) -> tuple[PeerProcess, str]:
    """A Traefik serving ``IngressRoute``/``TraefikService`` objects of ``namespace``; returns it and its address.

    devstack's own Traefik (devstack.gateway) runs only the Gateway provider;
    Argo Rollouts' Traefik router needs the Kubernetes CRD provider.
    """
    binary = traefik_binary()
    if not binary.exists():
        raise PeerBuildError(f"{binary} is missing; run `make setup` first")
    port, api_port = processes.free_port(), processes.free_port()
    config = {
        "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}, "traefik": {"address": f"127.0.0.1:{api_port}"}},
        "providers": {
            "kubernetesCRD": {"namespaces": [namespace], "throttleDuration": "200ms"},
            "providersThrottleDuration": "200ms",
        },
        "ping": {"entryPoint": "traefik"},
        "log": {"level": "INFO"},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "traefik-crd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    process = PeerProcess(
        "traefik-crd",
        [str(binary), f"--configFile={path}"],
        log_dir / "traefik-crd.log",
        f"http://127.0.0.1:{api_port}/ping",
        env={"KUBECONFIG": str(kubeconfig)},
    )
    return process, f"127.0.0.1:{port}"


# --- the model-server workloads the peers act on -------------------------------------------------------------------

IMAGE = "tensorflow/serving:2.18.0"
GRPC_PORT, REST_PORT = 8500, 8501
CONFIG_MOUNT = "/etc/modelrelease"
H2C = "kubernetes.io/h2c"


def version_config_map(model: str, version: int) -> dict[str, Any]:
    """``<model>-v<N>-config``: TF Serving's ModelServerConfig pinning version N (as the operator writes it)."""
    models = (
        "model_config_list {\n  config {\n"
        f'    name: "{model}"\n    base_path: "/models/{model}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{\n      specific {{\n        versions: {version}\n      }}\n    }}\n"
        "  }\n}\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{model}-v{version}-config"},
        "data": {
            "models.config": models,
            "monitoring.config": 'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n',
        },
    }


def pod_template(app: str, model: str, version: int) -> dict[str, Any]:
    """A model-server pod serving ``version`` of ``model``; only the ConfigMap and a label change between versions."""
    return {
        "metadata": {"labels": {"app": app, "model-version": str(version)}},
        "spec": {
            "containers": [
                {
                    "name": "tfserving",
                    "image": IMAGE,
                    "args": [
                        f"--port={GRPC_PORT}",
                        f"--rest_api_port={REST_PORT}",
                        f"--model_name={model}",
                        f"--model_base_path=/models/{model}",
                        f"--model_config_file={CONFIG_MOUNT}/models.config",
                        f"--monitoring_config_file={CONFIG_MOUNT}/monitoring.config",
                    ],
                    "ports": [
                        {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
                        {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
                    ],
                    "readinessProbe": {
                        "httpGet": {"path": f"/v1/models/{model}", "port": REST_PORT},
                        "periodSeconds": 1,
                        "failureThreshold": 3,
                    },
                    "volumeMounts": [{"name": "model-config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
                }
            ],
            "volumes": [{"name": "model-config", "configMap": {"name": f"{model}-v{version}-config"}}],
        },
    }


def flagger_objects(
    name: str, model: str, version: int, analysis: dict[str, Any], gateway: tuple[str, str] = ("devstack", "default")
) -> list[dict[str, Any]]:
    """The Deployment Flagger takes over and its Canary (Gateway API router, gRPC as h2c on the Services)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, model, version),
        },
    }
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": 120,
            "service": {
                "port": GRPC_PORT,
                "targetPort": GRPC_PORT,
                "portName": "grpc",
                "appProtocol": H2C,
                "gatewayRefs": [{"name": gateway[0], "namespace": gateway[1]}],
            },
            "analysis": analysis,
        },
    }
    return [deployment, canary]


def argo_objects(name: str, model: str, version: int, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Rollout with Argo's Traefik router: stable/canary Services, the TraefikService it weighs, an IngressRoute."""

    def service(role: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{role}"},
            "spec": {
                "selector": {"app": name},
                "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": H2C}],
            },
        }

    weighted = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "TraefikService",
        "metadata": {"name": f"{name}-weighted"},
        "spec": {
            "weighted": {
                "services": [
                    {"name": f"{name}-stable", "port": GRPC_PORT, "weight": 100, "scheme": "h2c"},
                    {"name": f"{name}-canary", "port": GRPC_PORT, "weight": 0, "scheme": "h2c"},
                ]
            }
        },
    }
    ingress = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": name},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "kind": "Rule",
                    "match": "PathPrefix(`/`)",
                    "services": [{"name": f"{name}-weighted", "kind": "TraefikService"}],
                }
            ],
        },
    }
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, model, version),
            "strategy": {
                "canary": {
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                    "trafficRouting": {"traefik": {"weightedTraefikServiceName": f"{name}-weighted"}},
                    "steps": steps,
                }
            },
        },
    }
    return [service("stable"), service("canary"), weighted, ingress, rollout]


def set_version_patch(model: str, version: int) -> dict[str, Any]:
    """A merge patch moving a Deployment's or Rollout's pod template to ``version`` (what a Git commit would do)."""
    return {
        "spec": {
            "template": {
                "metadata": {"labels": {"model-version": str(version)}},
                "spec": {"volumes": [{"name": "model-config", "configMap": {"name": f"{model}-v{version}-config"}}]},
            }
        }
    }


def main() -> int:
    built = setup()
    for name, measured in built.items():
        print(f"devstack setup-peers: {describe(name, measured)}")
    if not built:
        print("devstack setup-peers: cached: " + ", ".join(str(peer.path()) for peer in PEERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
