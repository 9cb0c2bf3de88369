"""Build the control-plane binaries from their Go modules, once per version.

Why from source: this machine has no Docker and no internet beyond the package
registries, so the only way to run the same API server that users run is to
compile it from the k8s.io/kubernetes module through the Go module proxy.

Why one scratch module: kube-apiserver, controller-manager, scheduler, kubectl,
etcd, kwok and helm all share most of k8s.io/*; building them from one module
(pinned by ``replace`` to one staging version) with one GOCACHE compiles the
shared packages once.  Binaries land in ``~/.cache/modelrelease/bin/<k8s>/``
and are never committed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import cache_root

K8S_VERSION = "v1.34.4"
# etcd is pinned by the Kubernetes release (go.mod of k8s.io/kubernetes v1.34.4).
ETCD_VERSION = "v3.6.4"
# kwok v0.7.0 and helm v3.19.x build against k8s.io/* 0.33/0.34; the replace
# lines below pin every k8s.io staging module to the cluster's own version.
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.19.2"

STAGING_MODULES = [
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
]


def bin_dir(version: str = K8S_VERSION) -> Path:
    return cache_root() / "bin" / version


@dataclass(frozen=True)
class Patch:
    """A minimal source change applied at build time to a copy of the module (the module cache stays pristine).

    Each one is a deliberate, documented divergence from upstream; ``build`` fails loudly when the
    original text is no longer found, so a version bump cannot silently drop or misapply it.
    """

    module: str
    file: str
    original: str
    replacement: str
    reason: str


# The pod runner gives every pod a 127.x address (the only addresses this machine may listen on), but
# ValidateEndpointIP refuses loopback addresses in Endpoints and EndpointSlices, so no Service could
# ever select a devstack pod.  Dropping that one check is the whole patch; every other rule stays.
ALLOW_LOOPBACK_ENDPOINTS = Patch(
    module="k8s.io/kubernetes",
    file="pkg/apis/core/validation/validation.go",
    original=(
        "\tif ip.IsLoopback() {\n"
        '\t\tallErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the loopback range '
        '(127.0.0.0/8, ::1/128)"))\n'
        "\t}\n"
    ),
    replacement="\t// devstack: loopback endpoints allowed, pods run on 127.x addresses (devstack/build.py).\n",
    reason="pods on 127.x addresses must be valid Endpoints/EndpointSlice addresses",
)
K8S_PATCHES = (ALLOW_LOOPBACK_ENDPOINTS,)


@dataclass(frozen=True)
class Tool:
    name: str
    package: str
    ldflags: str = ""
    # Built from its own module graph (``go install pkg@version``) instead of the
    # shared scratch module, for a tool that does not compile against the
    # cluster's k8s.io version.  It still shares GOCACHE and GOMODCACHE.
    own_version: str = ""
    patches: tuple[Patch, ...] = ()

    def recipe(self) -> str:
        """What the binary was built from; a change (a version bump, a patch) makes ``build`` rebuild it."""
        versions = f"k8s={K8S_VERSION} etcd={ETCD_VERSION} helm={HELM_VERSION} own={self.own_version}"
        patches = "".join(f" patch={p.module}/{p.file}:{hash_text(p.original + p.replacement)}" for p in self.patches)
        return f"{self.package} {versions} ldflags={self.ldflags}{patches}\n"


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _k8s_ldflags() -> str:
    # Without these the binaries report v0.0.0-master, which kubectl, helm and
    # kopf treat as an unknown (and sometimes unsupported) server.
    minor = K8S_VERSION.lstrip("v").split(".")[1]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={K8S_VERSION}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def tools() -> list[Tool]:
    k8s = _k8s_ldflags()
    patched_k8s = k8s.replace("gitTreeState=clean", "gitTreeState=dirty")
    return [
        Tool("etcd", "go.etcd.io/etcd/server/v3"),
        # All four come from one patched copy of k8s.io/kubernetes, so its packages compile once for all
        # of them; a patched tree reports itself as such in `kubectl version -o json` (gitTreeState).
        *(
            Tool(name, f"k8s.io/kubernetes/cmd/{name}", patched_k8s, patches=K8S_PATCHES)
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        ),
        # kwok v0.7.0 uses metav1.InitialEventsListBlueprintAnnotationKey, which
        # k8s.io/apimachinery 0.34 removed, so it keeps its own k8s.io 0.33.
        Tool(
            "kwok",
            "sigs.k8s.io/kwok/cmd/kwok",
            f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}",
            own_version=KWOK_VERSION,
        ),
        Tool("helm", "helm.sh/helm/v3/cmd/helm", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION} {k8s}"),
    ]


def _go_mod() -> str:
    staging_version = "v0." + K8S_VERSION.lstrip("v").split(".", 1)[1]
    replaces = "\n".join(f"\tk8s.io/{m} => k8s.io/{m} {staging_version}" for m in STAGING_MODULES)
    return (
        "module modelrelease.local/devstackbuild\n\n"
        "go 1.24.0\n\n"
        "require (\n"
        f"\tk8s.io/kubernetes {K8S_VERSION}\n"
        f"\tgo.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
        f"\thelm.sh/helm/v3 {HELM_VERSION}\n"
        ")\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def _tools_go() -> str:
    imports = "\n".join(f'\t_ "{t.package}"' for t in tools() if not t.own_version)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    # A build shares the machine with running clusters and tests: let them have the CPU first.
    if cmd[0] == "go" and shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def build(force: bool = False) -> dict[str, float]:
    """Build every missing binary; return seconds spent per step."""
    if shutil.which("go") is None:
        sys.exit("devstack build: the Go toolchain is not on PATH; install Go >= 1.24 first")
    timings: dict[str, float] = {}
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    missing = [t for t in tools() if force or not _is_current(out, t)]
    if not missing:
        print(f"devstack build: all {len(tools())} binaries present in {out}")
        return timings
    work = cache_root() / "gobuild" / K8S_VERSION
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    go_mod, tools_go = _go_mod(), _tools_go()
    marker = work / ".recipe"
    if not marker.exists() or marker.read_text() != go_mod + tools_go:
        (work / "go.mod").write_text(go_mod)
        (work / "tools.go").write_text(tools_go)
        (work / "go.sum").unlink(missing_ok=True)
        t0 = time.monotonic()
        _run(["go", "mod", "tidy"], work, env)
        timings["go mod tidy"] = time.monotonic() - t0
        marker.write_text(go_mod + tools_go)
    for tool in missing:
        t0 = time.monotonic()
        tmp = out / f".{tool.name}.tmp"
        ldflags = ["-ldflags", f"-s -w {tool.ldflags}".strip()]
        if tool.own_version:
            gobin = work / f".gobin-{tool.name}"
            _run(
                ["go", "install", "-p", "2", "-trimpath", *ldflags, f"{tool.package}@{tool.own_version}"],
                work,
                dict(env, GOBIN=str(gobin), GOFLAGS=""),
            )
            shutil.move(gobin / tool.name, tmp)
        else:
            build_dir = _patched_build_dir(work, tool.patches, env) if tool.patches else work
            _run(["go", "build", "-p", "2", "-trimpath", "-o", str(tmp), *ldflags, tool.package], build_dir, env)
        tmp.rename(out / tool.name)
        _stamp(out, tool).write_text(tool.recipe())
        timings[tool.name] = time.monotonic() - t0
    return timings


class PatchError(RuntimeError):
    """A build-time patch no longer applies to the pinned source."""


def _module_dir(work: Path, module: str, env: dict[str, str]) -> Path:
    listed = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", module], cwd=work, env=env, capture_output=True, text=True
    )
    if listed.returncode != 0 or not listed.stdout.strip():
        raise PatchError(f"cannot find module {module} to patch: {listed.stderr.strip()}")
    return Path(listed.stdout.strip())


def _patched_build_dir(work: Path, patches: tuple[Patch, ...], env: dict[str, str]) -> Path:
    """A scratch module whose ``replace`` points each patched module at a patched copy; made once per patch set.

    Go refuses ``-overlay`` for files in the module cache, so each patched module is copied (hard
    links: its ~100 MB cost nothing) with only the patched files rewritten.  The rest of the module
    graph is the shared scratch module's, so the staging packages still come from the build cache.
    """
    recipe = (work / "go.mod").read_text() + "".join(p.module + p.file + p.original + p.replacement for p in patches)
    build_dir = work / "patched" / hash_text(recipe)
    ready = build_dir / ".ready"
    if ready.exists() and ready.read_text() == recipe:
        return build_dir
    if build_dir.exists():
        _make_writable(build_dir)
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    go_mod = (work / "go.mod").read_text()
    for module in sorted({p.module for p in patches}):
        source = _module_dir(work, module, env)
        copy = build_dir / module.replace("/", "_")
        try:
            shutil.copytree(source, copy, copy_function=os.link, symlinks=True)
        except OSError:
            shutil.copytree(source, copy, symlinks=True)
        _make_writable(copy)
        for patch in (p for p in patches if p.module == module):
            target = copy / patch.file
            text = (source / patch.file).read_text()
            if text.count(patch.original) != 1:
                raise PatchError(
                    f"patch for {module}/{patch.file} ({patch.reason}) no longer applies: the original text occurs "
                    f"{text.count(patch.original)} times; update devstack/build.py for this Kubernetes version"
                )
            target.unlink()  # a hard link into the module cache: never write through it
            target.write_text(text.replace(patch.original, patch.replacement))
        go_mod += f"\nreplace {module} => ./{copy.name}\n"
    (build_dir / "go.mod").write_text(go_mod)
    shutil.copy(work / "go.sum", build_dir / "go.sum")
    ready.write_text(recipe)
    return build_dir


def _make_writable(root: Path) -> None:
    """Module cache directories are read-only; the copy must be writable to patch it and to delete it."""
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)


def _stamp(out: Path, tool: Tool) -> Path:
    return out / f".{tool.name}.recipe"


def _is_current(out: Path, tool: Tool) -> bool:
    if not (out / tool.name).exists():
        return False
    stamp = _stamp(out, tool)
    if not stamp.exists():
        # Built before stamps existed: trust it once and record what it is taken to be.
        stamp.write_text(tool.recipe())
        return True
    return stamp.read_text() == tool.recipe()


GOPHER_LUA_VERSION = "v1.1.1"
"""The Lua interpreter Argo CD embeds; its resource-customization scripts are tested with it (devstack/luaharness)."""
LUA_HARNESS_SOURCE = Path(__file__).resolve().parent / "luaharness"


def lua_harness() -> Path:
    """The built harness: ``luaharness SCRIPT < object.json`` prints the script's result as JSON."""
    return cache_root() / "bin" / f"gopher-lua-{GOPHER_LUA_VERSION}" / "luaharness"


def _lua_harness_recipe() -> str:
    sources = "".join((LUA_HARNESS_SOURCE / name).read_text() for name in sorted(("main.go", "go.mod", "go.sum")))
    return f"gopher-lua {GOPHER_LUA_VERSION} {hash_text(sources)}\n"


def build_lua_harness() -> dict[str, float]:
    """Build the Argo CD Lua harness once per gopher-lua version and source; return the seconds spent."""
    out = lua_harness()
    stamp = out.with_name(".luaharness.recipe")
    recipe = _lua_harness_recipe()
    if out.exists() and stamp.exists() and stamp.read_text() == recipe:
        return {}
    if shutil.which("go") is None:
        sys.exit("devstack build: the Go toolchain is not on PATH; install Go >= 1.22 first")
    t0 = time.monotonic()
    work = cache_root() / "gobuild" / f"luaharness-{GOPHER_LUA_VERSION}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(LUA_HARNESS_SOURCE, work)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly", GOTOOLCHAIN="local")
    tmp = out.with_name(".luaharness.tmp")
    _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."], work, env)
    tmp.rename(out)
    stamp.write_text(recipe)
    return {"luaharness (gopher-lua)": time.monotonic() - t0}


def main() -> None:
    t0 = time.monotonic()
    timings = build(force="--force" in sys.argv)
    for step, secs in timings.items():
        print(f"devstack build: {step:<26} {secs:7.1f} s")
    print(f"devstack build: total {time.monotonic() - t0:.1f} s ({bin_dir()})")


if __name__ == "__main__":
    main()
