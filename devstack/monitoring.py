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

The Prometheus Operator (``github.com/prometheus-operator/prometheus-operator``
v0.85.0) is built the same way into ``bin/prometheus-operator/<version>/``
with its CRDs: its module zip lacks ``pkg/apis/monitoring`` and
``pkg/client``, which its go.mod replaces with those directories, so a copy
drops the two replaces and requires them from the proxy (they are modules of
their own).  On devstack it runs as a process against the local API server
(``operator_argv``).  Why not the StatefulSet it makes for a Prometheus
object: the pod runner would have to run the Prometheus image.  Instead a
Prometheus object with 0 replicas (``prometheus_object``) has the Operator
do everything else: select the chart's PodMonitor, ServiceMonitor and
PrometheusRule and write the configuration and rule files it generated
into a Secret and ConfigMaps; devstack's Prometheus binary runs on that
configuration, changed only where it is not in a pod (``operator_config``).
So the relabelling that runs is the one the Operator gives users.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

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


# --- running the Prometheus Operator on devstack -----------------------------------------------------------------

PROMETHEUS_CR = "devstack"
"""The Prometheus object devstack asks the Operator to configure (0 replicas: devstack runs the binary)."""


def _kubeconfig_user(kubeconfig: Path) -> dict[str, str]:
    """The API server's address and the admin's certificate files, from devstack's kubeconfig (file paths)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    return {
        "server": cluster["server"],
        "ca": cluster["certificate-authority"],
        "cert": user["client-certificate"],
        "key": user["client-key"],
    }


def operator_argv(kubeconfig: Path, listen: str, namespaces: Sequence[str] = ()) -> list[str]:
    """The Operator as a devstack process: the local API server with the admin's certificate, no kubelet sync.

    The Operator's own flags for running outside a pod (``--apiserver`` and the
    certificate files) stand in for the ServiceAccount a Deployment of it would use.
    """
    if not operator_binary().exists():
        raise MonitoringBuildError("the Prometheus Operator is not built: run `make setup` (python -m devstack setup)")
    user = _kubeconfig_user(kubeconfig)
    argv = [
        str(operator_binary()),
        f"--apiserver={user['server']}",
        f"--ca-file={user['ca']}",
        f"--cert-file={user['cert']}",
        f"--key-file={user['key']}",
        f"--web.listen-address={listen}",
        "--log-level=info",
    ]
    if namespaces:
        argv.append(f"--namespaces={','.join(namespaces)}")
    return argv


def prometheus_object(namespace: str, selector: Mapping[str, str], name: str = PROMETHEUS_CR) -> dict[str, Any]:
    """A Prometheus that selects monitors and rules by ``selector`` in every namespace, run by nobody (0 replicas).

    The Operator still does for it all it does for a running one: it selects the
    PodMonitors, ServiceMonitors and PrometheusRules, writes the generated
    configuration into the Secret ``prometheus-<name>`` and the rules into the
    ConfigMaps ``prometheus-<name>-rulefiles-<n>``; devstack feeds those to its
    own Prometheus binary (``operator_config``) instead of the StatefulSet's pods.
    """
    match = {"matchLabels": dict(selector)}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 0,
            "version": f"v{prometheus_release()}",
            "scrapeInterval": "1s",
            "evaluationInterval": "1s",
            "podMonitorSelector": match,
            "podMonitorNamespaceSelector": {},
            "serviceMonitorSelector": match,
            "serviceMonitorNamespaceSelector": {},
            "ruleSelector": match,
            "ruleNamespaceSelector": {},
        },
    }


def generated_config(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration the Operator generated, from its Secret (``prometheus.yaml.gz``, base64 in ``data``)."""
    packed = base64.b64decode(secret["data"]["prometheus.yaml.gz"])
    loaded: dict[str, Any] = yaml.safe_load(gzip.decompress(packed))
    return loaded


RELOADER_ENV = {"POD_NAME": "devstack", "SHARD": "0"}
"""What the config reloader of the Operator's StatefulSet pod (shard 0) expands ``$(NAME)`` to, for devstack's process."""

_ENV_REFERENCE = re.compile(r"\$\(([a-zA-Z_0-9]+)\)")


def _expand_reloader_env(value: Any) -> Any:
    """Every string in ``value`` with ``$(NAME)`` expanded from ``RELOADER_ENV``, as the reloader expands its file."""
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda m: RELOADER_ENV.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {key: _expand_reloader_env(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_reloader_env(item) for item in value]
    return value


def operator_config(generated: Mapping[str, Any], kubeconfig: Path, rules: Path) -> dict[str, Any]:
    """The Operator's configuration, changed only where devstack's Prometheus is not a pod of its StatefulSet.

    - every ``kubernetes_sd_configs`` entry gets ``kubeconfig_file``: in a pod
      Prometheus finds the API server through its ServiceAccount; here through
      devstack's kubeconfig.  Roles, namespaces, selectors and every
      ``relabel_configs`` entry stay exactly as generated;
    - the ``$(VAR)`` references the config reloader expands from its pod's
      environment (``RELOADER_ENV``) are expanded the same way, anywhere in the
      configuration: ``$(POD_NAME)`` (external labels) becomes ``devstack`` and
      ``$(SHARD)`` becomes ``0``.  ``$(SHARD)`` is in the keep rule that ends
      every generated job's relabelling (``regex: $(SHARD);|.+;.+``): left
      unexpanded it matches no target, so every pod a PodMonitor selects is
      dropped.  Unknown references stay as they are, as the reloader leaves them;
    - ``rule_files`` point at the directory the rule ConfigMaps are written to;
    - no Alertmanager (the generated config names none without one in the spec).
    """
    config = copy.deepcopy(dict(generated))
    for job in config.get("scrape_configs") or []:
        for sd in job.get("kubernetes_sd_configs") or []:
            sd["kubeconfig_file"] = str(kubeconfig)
    config = _expand_reloader_env(config)
    if config.get("rule_files"):
        config["rule_files"] = [str(rules / "*.yaml")]
    config.pop("alerting", None)
    return config


def write_rule_files(config_maps: Sequence[Mapping[str, Any]], rules: Path) -> list[Path]:
    """The rule files the Operator generated from the PrometheusRules, from its ``rulefiles`` ConfigMaps."""
    rules.mkdir(parents=True, exist_ok=True)
    written = []
    for config_map in config_maps:
        for name, text in (config_map.get("data") or {}).items():
            path = rules / name
            path.write_text(text)
            written.append(path)
    return written


@contextmanager
def serve_config(config: Mapping[str, Any], directory: Path, timeout: float = 60.0) -> Iterator[str]:
    """devstack's Prometheus binary on ``config`` for a ``with`` block; yields its URL (``reload`` re-reads it)."""
    from devstack import prometheus

    binary = prometheus_binary()
    if not binary.exists():
        raise MonitoringBuildError("prometheus is not built: run `make setup` (python -m devstack setup)")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    address = prometheus.free_address()
    argv = [
        str(binary),
        f"--config.file={path}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=2h",
        f"--web.listen-address={address}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    with prometheus.running(argv, address, directory / "prometheus.log", timeout) as url:
        yield url


def setup() -> dict[str, float]:
    """``make setup``'s step: Prometheus 3 and the Prometheus Operator from their modules (empty when cached).

    The Operator's measurements are returned under ``operator_*`` keys and printed here.
    """
    measured = dict(build_prometheus())
    operator = build_prometheus_operator()
    if operator:
        print(
            f"devstack setup: prometheus-operator {OPERATOR_VERSION} built in {operator['wall_seconds']:.0f} s wall, "
            f"{operator.get('cpu_seconds', 0):.0f} CPU-s, peak RSS {operator.get('peak_rss_mib', 0):.0f} MiB"
        )
        measured.update({f"operator_{key}": value for key, value in operator.items()})
    return measured


def main() -> int:
    measured = setup()
    print(json.dumps(measured or {"cached": [str(prometheus_binary()), str(operator_binary())]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
