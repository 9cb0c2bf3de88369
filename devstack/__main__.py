"""`python -m devstack setup|setup-peers|bench|chaos|up|down|status|env|logs`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable


def _optional_step(module: str, function: str) -> Callable[[], object] | None:
    """A setup step from another devstack module, or None (with a warning) while that module does not exist yet."""
    try:
        step: Callable[[], object] = getattr(importlib.import_module(f"devstack.{module}"), function)
    except (ImportError, AttributeError) as exc:
        print(f"devstack setup: warning: skipping devstack.{module}.{function} ({exc})", file=sys.stderr)
        return None
    return step


def _setup(_: argparse.Namespace) -> int:
    """Install and build everything the cluster needs, idempotently, and print the times."""
    from devstack import build

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    for step_name, secs in build.build().items():
        timings[f"go: {step_name}"] = secs
    timings["control plane (go build)"] = time.monotonic() - t0
    t0 = time.monotonic()
    build.build_lua_harness()
    timings["argo cd lua harness (go build)"] = time.monotonic() - t0
    from devstack import gateway

    t0 = time.monotonic()
    traefik = gateway.setup()
    timings["traefik + gateway/istio CRDs"] = time.monotonic() - t0
    if traefik:
        print(
            f"devstack setup: traefik {gateway.TRAEFIK_VERSION} built in {traefik['wall_seconds']:.0f} s wall, "
            f"{traefik.get('cpu_seconds', 0):.0f} CPU-s, peak RSS {traefik.get('peak_rss_mib', 0):.0f} MiB"
        )
    from devstack import monitoring

    t0 = time.monotonic()
    built = monitoring.setup()
    timings["prometheus 3 + operator (go)"] = time.monotonic() - t0
    if "wall_seconds" in built:  # the Operator's own line (operator_* keys) is printed by monitoring.setup
        print(
            f"devstack setup: prometheus {monitoring.prometheus_release()} built in {built['wall_seconds']:.0f} s wall, "
            f"{built.get('cpu_seconds', 0):.0f} CPU-s, peak RSS {built.get('peak_rss_mib', 0):.0f} MiB"
        )
    from devstack import peers

    t0 = time.monotonic()
    for name, measured in peers.setup().items():  # issue 17's head to head; empty (a stat or two) when cached
        print(f"devstack setup: {peers.describe(name, measured)}")
    timings["flagger + argo rollouts (go)"] = time.monotonic() - t0
    for name, step in (
        ("savedmodels (train)", _optional_step("models", "ensure_models")),
        ("tmux (apt)", _optional_step("tools", "ensure_tmux")),
    ):
        if step is None:
            continue
        t0 = time.monotonic()
        step()
        timings[name] = time.monotonic() - t0
    for name, secs in timings.items():
        print(f"devstack setup: {name:<28} {secs:7.1f} s")
    total = sum(secs for name, secs in timings.items() if not name.startswith("go: "))
    print(f"devstack setup: total {total:.1f} s")
    return 0


def _setup_peers(_: argparse.Namespace) -> int:
    """Build Flagger and Argo Rollouts (issue 17's head to head) into the cache, idempotently (``setup`` does too)."""
    from devstack import peers

    return peers.main()


def _bench(args: argparse.Namespace) -> int:
    from devstack import bench

    return bench.main(args.pods)


def _chaos(args: argparse.Namespace) -> int:
    from devstack import bench_chaos

    faults = [name for name in args.faults.split(",") if name] or None
    return bench_chaos.main(args.trials, args.seed, faults, write=not args.no_write, keep=args.keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="build and install everything (idempotent, cached)").set_defaults(func=_setup)
    sub.add_parser("setup-peers", help="build Flagger and Argo Rollouts (cached)").set_defaults(func=_setup_peers)
    bench = sub.add_parser("bench", help="time a throwaway devstack: up, kwok scale, down")
    bench.add_argument("--pods", type=int, default=300, help="fake pods to run on kwok nodes (default 300)")
    bench.set_defaults(func=_bench)
    chaos = sub.add_parser("chaos", help="chaos trials on a private devstack: invariant violations, time added")
    chaos.add_argument("--trials", type=int, default=3, help="trials of each fault, models alternating (default 3)")
    chaos.add_argument("--seed", type=int, default=20260101, help="seed of the first trial (default 20260101)")
    chaos.add_argument("--faults", default="", help="comma-separated subset of the faults (default: all)")
    chaos.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    chaos.add_argument("--keep", action="store_true", help="keep the private devstack's directory (logs) afterwards")
    chaos.set_defaults(func=_chaos)
    from devstack import cluster

    cluster.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `python -m devstack status | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RuntimeError, ValueError) as exc:
        # devstack's own errors (missing binaries, unreadable state, a component that died) are for the user,
        # not a traceback.
        print(f"devstack {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
