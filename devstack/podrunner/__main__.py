"""``python -m devstack.podrunner --kubeconfig K --node-name N --state-dir D``: run the node agent until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from devstack.podrunner.agent import PodRunner
from devstack.podrunner.kube import Kube


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.podrunner", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the cluster")
    parser.add_argument("--node-name", default="devstack-node")
    parser.add_argument("--state-dir", required=True, type=Path, help="pod directories, logs and IP allocations")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    kube = await Kube.from_kubeconfig(args.kubeconfig)
    try:
        await PodRunner(kube, args.node_name, args.state_dir.resolve()).run(stop)
    finally:
        await kube.close()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
