"""`python -m devstack setup|up|down|status|env|logs|bench`."""

from __future__ import annotations

import argparse
import sys
import time


def _setup(_: argparse.Namespace) -> int:
    """Install and build everything the cluster needs, idempotently, and print the times."""
    from devstack import build, models, prometheus

    timings: dict[str, float] = {}
    for name, step in (
        ("control plane (go build)", build.build),
        ("prometheus (apt)", prometheus.ensure_installed),
        ("savedmodels (train)", models.ensure_models),
    ):
        t0 = time.monotonic()
        step()
        timings[name] = time.monotonic() - t0
    for name, secs in timings.items():
        print(f"devstack setup: {name:<28} {secs:7.1f} s")
    print(f"devstack setup: total {sum(timings.values()):.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="build and install everything (idempotent, cached)").set_defaults(func=_setup)
    from devstack import cluster

    cluster.add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
