"""Prometheus 3 for devstack, built from its Go module by ``make setup`` and cached by version.

Why from source: Debian's package is Prometheus 2.42, built without the
Kubernetes service discovery plugin, so devstack had to emulate
``kubernetes_sd_configs`` with a pod-listing supervisor of its own.  Built
from ``github.com/prometheus/prometheus`` (module v0.316.0 is Prometheus
3.16.0), Prometheus discovers the model pods through the local API server
itself, with the same relabelling the chart's PodMonitor gives users.

How it is built (measured facts, see docs/metrics.md and the README):

- inside the module's own directory with ``GOWORK=off``: the module ships a
  go.work that lists directories its zip does not contain;
- with the version ldflags of ``github.com/prometheus/common/version``, or
  ``prometheus --version`` names no version;
- without the ``builtinassets`` tag: the React UI's compiled assets are not
  in the module, so the web UI answers 500 while the HTTP API (all devstack
  and the operator use) works;
- with the tags ``remove_all_sd,enable_kubernetes_sd``: only the service
  discovery devstack uses (Kubernetes; file and HTTP are always in), not
  the cloud providers' SDKs, which are most of what a full build compiles
  (1274 packages instead of 1517);
- at ``nice 10`` and ``-p 2``, like the control plane and Traefik, because a
  build shares the machine with running clusters and tests.

The binary lands in ``~/.cache/modelrelease/bin/prometheus/<version>/`` with
a recipe stamp (a change rebuilds) and the build's wall time, CPU time and
peak RSS (``build-measurements.json``), which ``make setup`` prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from devstack import cache_root
from devstack.gateway import module_dir, parse_time_v

PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
PROMETHEUS_MODULE_VERSION = "v0.316.0"
BUILD_TAGS = "remove_all_sd,enable_kubernetes_sd"
VERSION_PACKAGE = "github.com/prometheus/common/version"


class MonitoringBuildError(RuntimeError):
    """Prometheus could not be fetched or built."""


def _env() -> dict[str, str]:
    """GOWORK=off: the module's go.work names directories its zip lacks; the module's own go.sum, read-only."""
    return dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")


def prometheus_release(module_version: str = PROMETHEUS_MODULE_VERSION) -> str:
    """The Prometheus release a module version stands for: v0.316.0 is 3.16.0 (v0.3MM.P is 3.MM.P)."""
    major_minor, patch = module_version.removeprefix("v0.").split(".")
    number = int(major_minor)
    return f"{number // 100}.{number % 100}.{patch}"


def prometheus_dir() -> Path:
    return cache_root() / "bin" / "prometheus" / PROMETHEUS_MODULE_VERSION


def prometheus_binary() -> Path:
    return prometheus_dir() / "prometheus"


def _recipe() -> str:
    return (
        f"{PROMETHEUS_MODULE}@{PROMETHEUS_MODULE_VERSION} ./cmd/prometheus -trimpath -s -w -tags {BUILD_TAGS} "
        f"version={prometheus_release()} GOWORK=off CGO_ENABLED=0\n"
    )


def prometheus_current() -> bool:
    stamp = prometheus_dir() / ".recipe"
    return prometheus_binary().exists() and stamp.exists() and stamp.read_text() == _recipe()


def _ldflags(version: str) -> str:
    stamp = datetime.fromtimestamp(0, UTC).strftime("%Y%m%d-%H:%M:%S")  # reproducible, like the control plane
    fields = {
        "Version": version,
        "Revision": PROMETHEUS_MODULE_VERSION,
        "Branch": "module",
        "BuildUser": "devstack",
        "BuildDate": stamp,
    }
    return " ".join(["-s", "-w", *(f"-X {VERSION_PACKAGE}.{key}={value}" for key, value in fields.items())])


def build_prometheus(force: bool = False) -> dict[str, float]:
    """Build Prometheus once per version; returns its measurements (empty when it was already built)."""
    if not force and prometheus_current():
        return {}
    if shutil.which("go") is None:
        raise MonitoringBuildError("the Go toolchain is not on PATH; install Go >= 1.25 first")
    started = time.monotonic()
    try:
        source = module_dir(PROMETHEUS_MODULE, PROMETHEUS_MODULE_VERSION)
    except RuntimeError as error:
        raise MonitoringBuildError(str(error)) from error
    out = prometheus_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".prometheus.tmp"
    report = out / "build-time.txt"
    stated = source / "VERSION"  # the release the module says it is, when it says
    release = stated.read_text().strip() if stated.exists() else prometheus_release()
    cmd = ["go", "build", "-p", "2", "-trimpath", "-tags", BUILD_TAGS, "-ldflags", _ldflags(release)]
    cmd += ["-o", str(tmp), "./cmd/prometheus"]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    timed = ["/usr/bin/time", "-v", "-o", str(report), *cmd] if Path("/usr/bin/time").exists() else cmd
    print("+ (in", source, ")", " ".join(cmd), flush=True)
    subprocess.run(timed, cwd=source, env=_env(), check=True)
    tmp.rename(prometheus_binary())
    (out / ".recipe").write_text(_recipe())
    measured = parse_time_v(report.read_text()) if report.exists() else {}
    measured["wall_seconds_with_download"] = time.monotonic() - started
    measured.setdefault("wall_seconds", measured["wall_seconds_with_download"])
    (out / "build-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")
    return measured


# --- the Prometheus Operator -------------------------------------------------------------------------------------

OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
OPERATOR_VERSION = "v0.85.0"
OPERATOR_SUBMODULES = ("pkg/apis/monitoring", "pkg/client")
"""Modules of their own that the operator's go.mod replaces with directories its module zip lacks."""


def operator_dir() -> Path:
    return cache_root() / "bin" / "prometheus-operator" / OPERATOR_VERSION


def operator_binary() -> Path:
    return operator_dir() / "prometheus-operator"


def operator_crds() -> Path:
    return operator_dir() / "crds"


def _operator_recipe() -> str:
    dropped = " ".join(OPERATOR_SUBMODULES)
    return f"{OPERATOR_MODULE}@{OPERATOR_VERSION} ./cmd/operator -trimpath -s -w dropreplace={dropped} GOWORK=off\n"


def operator_current() -> bool:
    stamp = operator_dir() / ".recipe"
    return operator_binary().exists() and stamp.exists() and stamp.read_text() == _operator_recipe()


def build_prometheus_operator(force: bool = False) -> dict[str, float]:
    """Build the Prometheus Operator once per version, with its CRDs; returns the measurements (empty if cached).

    Its module zip lacks ``pkg/apis/monitoring`` and ``pkg/client``, which its
    go.mod replaces with those directories: a writable copy drops the two
    ``replace`` lines and requires them at the same version from the proxy
    (they are modules of their own), which also adds their go.sum lines.
    """
    if not force and operator_current():
        return {}
    if shutil.which("go") is None:
        raise MonitoringBuildError("the Go toolchain is not on PATH; install Go >= 1.25 first")
    started = time.monotonic()
    try:
        source = module_dir(OPERATOR_MODULE, OPERATOR_VERSION)
    except RuntimeError as error:
        raise MonitoringBuildError(str(error)) from error
    work = cache_root() / "gobuild" / f"prometheus-operator-{OPERATOR_VERSION}"
    if work.exists():
        shutil.rmtree(work)
    unused = {"Documentation", "test", "example", "scripts"}  # top-level only: nothing ./cmd/operator imports

    def skip(directory: str, names: list[str]) -> set[str]:
        return unused & set(names) if Path(directory) == source else set()

    shutil.copytree(source, work, ignore=skip)
    for path in [work, *work.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    env = dict(_env(), GOFLAGS="-mod=mod")
    edits = [f"-dropreplace={OPERATOR_MODULE}/{sub}" for sub in OPERATOR_SUBMODULES]
    edits += [f"-require={OPERATOR_MODULE}/{sub}@{OPERATOR_VERSION}" for sub in OPERATOR_SUBMODULES]
    subprocess.run(["go", "mod", "edit", *edits], cwd=work, env=env, check=True)
    out = operator_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".prometheus-operator.tmp"
    report = out / "build-time.txt"
    version = OPERATOR_VERSION.removeprefix("v")
    ldflags = f"-s -w -X {VERSION_PACKAGE}.Version={version} -X {VERSION_PACKAGE}.Revision={OPERATOR_VERSION}"
    cmd = ["go", "build", "-p", "2", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), "./cmd/operator"]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    timed = ["/usr/bin/time", "-v", "-o", str(report), *cmd] if Path("/usr/bin/time").exists() else cmd
    print("+ (in", work, ")", " ".join(cmd), flush=True)
    subprocess.run(timed, cwd=work, env=env, check=True)
    tmp.rename(operator_binary())
    crds = operator_crds()
    crds.mkdir(exist_ok=True)
    for path in sorted((source / "example" / "prometheus-operator-crd").glob("monitoring.coreos.com_*.yaml")):
        (crds / path.name).write_text(path.read_text())
    if not list(crds.glob("*.yaml")):
        raise MonitoringBuildError(f"no CRDs in {source / 'example' / 'prometheus-operator-crd'}")
    shutil.rmtree(work, ignore_errors=True)
    (out / ".recipe").write_text(_operator_recipe())
    measured = parse_time_v(report.read_text()) if report.exists() else {}
    measured["wall_seconds_with_download"] = time.monotonic() - started
    measured.setdefault("wall_seconds", measured["wall_seconds_with_download"])
    (out / "build-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")
    return measured


def setup() -> dict[str, float]:
    """``make setup``'s step: Prometheus 3 from its module (empty measurements when cached)."""
    return build_prometheus()


def main() -> int:
    measured = setup()
    print(json.dumps(measured or {"cached": str(prometheus_binary())}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
