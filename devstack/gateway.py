"""The data planes the gatewayApi and istio routers drive on devstack: Traefik and the CRDs they need.

Why Traefik: a real Gateway API implementation, pure Go, that builds from
its module through the Go module proxy (v3.6.12 resolves every dependency
there; v3.7.x does not).  ``make setup`` builds it inside its own module
directory (``GOWORK=off``: its go.mod has ``replace`` lines that a scratch
module would not inherit) and caches the binary by version under
``~/.cache/modelrelease/bin/traefik/<version>/``, like the control plane.
The build's wall time and peak RSS (``/usr/bin/time -v``) are written next
to it and printed by setup.

Why the CRDs come from Go modules: ``sigs.k8s.io/gateway-api`` at the
version Traefik is built against (v1.4.0; its standard channel already has
RequestMirror ``percent`` and ``fraction``, so the experimental channel is not
needed) and ``istio.io/api``'s generated CRD file (only VirtualService and
DestinationRule are installed: there is no Envoy here, the traffic generator
honours VirtualServices itself).  They are copied into the cache at setup
and applied by ``devstack up``.

What Traefik does not do: its Gateway provider implements no
``RequestMirror`` filter (a rule that has one answers 500).  On devstack the
traffic generator therefore serves a rule that carries the operator's
mirror filter itself (primary from the rule's backendRefs, a copy to the
mirror); every other request goes through Traefik (``devstack.traffic.kube``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from devstack import cache_root

TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
TRAEFIK_VERSION = "v3.6.12"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.4.0"
ISTIO_API_MODULE = "istio.io/api"
ISTIO_API_VERSION = "v1.31.4"
ISTIO_CRDS = ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io")
GATEWAY_CLASS = "devstack"
GATEWAY_NAME = "devstack"
GATEWAY_NAMESPACE = "default"
CONTROLLER_NAME = "traefik.io/gateway-controller"


class GatewayBuildError(RuntimeError):
    """Traefik or a CRD module could not be fetched or built."""


def traefik_dir() -> Path:
    return cache_root() / "bin" / "traefik" / TRAEFIK_VERSION


def traefik_binary() -> Path:
    return traefik_dir() / "traefik"


def crd_dir() -> Path:
    return cache_root() / "crds" / f"gateway-api-{GATEWAY_API_VERSION}-istio-{ISTIO_API_VERSION}"


def _env() -> dict[str, str]:
    return dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")


def module_dir(module: str, version: str, toolchain: str = "local") -> Path:
    """The module's source in the Go module cache (downloaded through the proxy when missing).

    ``toolchain`` is ``GOTOOLCHAIN``: the go command refuses to download a
    module whose go.mod asks for a newer Go than the one running unless it
    may fetch that toolchain (the peers' builds pass one; see devstack.peers).
    """
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        env=_env() | {"GOTOOLCHAIN": toolchain},
        cwd=tempfile.gettempdir(),
    )
    try:
        info: dict[str, Any] = json.loads(found.stdout or "{}")
    except ValueError:
        info = {}
    if found.returncode != 0 or not info.get("Dir"):
        raise GatewayBuildError(f"cannot download {module}@{version}: {info.get('Error') or found.stderr.strip()}")
    return Path(info["Dir"])


def _recipe() -> str:
    return f"{TRAEFIK_MODULE}@{TRAEFIK_VERSION} ./cmd/traefik -trimpath -s -w GOWORK=off CGO_ENABLED=0\n"


def traefik_current() -> bool:
    stamp = traefik_dir() / ".recipe"
    return traefik_binary().exists() and stamp.exists() and stamp.read_text() == _recipe()


def parse_time_v(text: str) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) from ``/usr/bin/time -v``'s report."""
    values: dict[str, float] = {}
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if match:
        values["peak_rss_mib"] = int(match.group(1)) / 1024
    match = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if match:
        seconds = 0.0
        for part in match.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        values["wall_seconds"] = seconds
    cpu = 0.0
    for label in ("User time (seconds)", "System time (seconds)"):
        match = re.search(re.escape(label) + r": ([\d.]+)", text)
        if match:
            cpu += float(match.group(1))
    values["cpu_seconds"] = cpu
    return values


def build_traefik(force: bool = False) -> dict[str, float]:
    """Build Traefik once per version; returns its measurements (empty when it was already built)."""
    if not force and traefik_current():
        return {}
    if shutil.which("go") is None:
        raise GatewayBuildError("the Go toolchain is not on PATH; install Go >= 1.25 first")
    source = module_dir(TRAEFIK_MODULE, TRAEFIK_VERSION)
    out = traefik_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".traefik.tmp"
    report = out / "build-time.txt"
    ldflags = f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={TRAEFIK_VERSION}"
    cmd = ["go", "build", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), "./cmd/traefik"]
    if shutil.which("nice"):  # a build shares the machine with running clusters and tests
        cmd = ["nice", "-n", "10", *cmd]
    timed = ["/usr/bin/time", "-v", "-o", str(report), *cmd] if Path("/usr/bin/time").exists() else cmd
    print("+ (in", source, ")", " ".join(cmd), flush=True)
    started = time.monotonic()
    subprocess.run(timed, cwd=source, env=_env(), check=True)
    tmp.rename(traefik_binary())
    (out / ".recipe").write_text(_recipe())
    measured = parse_time_v(report.read_text()) if report.exists() else {}
    measured.setdefault("wall_seconds", time.monotonic() - started)
    (out / "build-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")
    return measured


def ensure_crds() -> Path:
    """Copy the Gateway API standard channel and Istio's VirtualService/DestinationRule CRDs into the cache."""
    target = crd_dir()
    if (target / ".ready").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    standard = module_dir(GATEWAY_API_MODULE, GATEWAY_API_VERSION) / "config" / "crd" / "standard"
    for path in sorted(standard.glob("gateway.networking.k8s.io_*.yaml")):
        (target / path.name).write_text(path.read_text())
    istio = module_dir(ISTIO_API_MODULE, ISTIO_API_VERSION) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    kept = [doc for doc in yaml.safe_load_all(istio.read_text()) if doc and doc["metadata"]["name"] in ISTIO_CRDS]
    if len(kept) != len(ISTIO_CRDS):
        raise GatewayBuildError(f"{istio} lacks one of {', '.join(ISTIO_CRDS)}")
    (target / "istio.yaml").write_text(yaml.safe_dump_all(kept, sort_keys=False))
    (target / ".ready").write_text(f"{GATEWAY_API_VERSION} {ISTIO_API_VERSION}\n")
    return target


def setup() -> dict[str, float]:
    """``make setup``'s step: the CRDs, then Traefik; returns the build's measurements (empty if cached)."""
    ensure_crds()
    return build_traefik()


# --- running it ---------------------------------------------------------------------------------------------------


def traefik_config(state_root: Path, port: int) -> Path:
    """Traefik's static configuration: one entry point on loopback, the Kubernetes Gateway provider."""
    directory = state_root / "traefik"
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
        "providers": {"kubernetesGateway": {"throttleDuration": "200ms"}, "providersThrottleDuration": "200ms"},
        "log": {"level": "INFO"},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
    path = directory / "traefik.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def traefik_argv(state_root: Path, port: int) -> list[str]:
    binary = traefik_binary()
    if not binary.exists():
        raise GatewayBuildError(f"{binary} is missing; run `make setup` (python -m devstack setup) first")
    return [str(binary), f"--configFile={traefik_config(state_root, port)}"]


def gateway_objects(port: int) -> list[dict[str, Any]]:
    """The GatewayClass and the Gateway (in ``default``, routes from every namespace) Traefik serves."""
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER_NAME},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {"name": "web", "protocol": "HTTP", "port": port, "allowedRoutes": {"namespaces": {"from": "All"}}}
                ],
            },
        },
    ]


def main() -> int:
    measured = setup()
    print(json.dumps(measured or {"cached": str(traefik_binary())}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
