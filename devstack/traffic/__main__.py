"""``python -m devstack.traffic``: send labelled digits to a Service (or fixed targets) for a bounded time."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devstack.traffic.endpoints import Endpoint, NonLoopbackAddress, StaticEndpoints, split_host_port
from devstack.traffic.generator import MAX_DURATION, MAX_RATE, TrafficConfig, TrafficGenerator
from devstack.traffic.routing import Resolver, ServiceResolver


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--header wants name=value, got {text!r}")
    return name.strip().lower(), value.strip()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devstack.traffic", description=__doc__)
    where = p.add_argument_group("where to send")
    where.add_argument("--kubeconfig", type=Path, help="kubeconfig of the devstack cluster")
    where.add_argument("--namespace", default="default")
    where.add_argument("--service", help="the Service users call (e.g. digits)")
    where.add_argument(
        "--router",
        choices=["auto", "replicas", "httproute", "virtualservice", "gateway"],
        default="auto",
        help="auto: follow an HTTPRoute or VirtualService named --route (default: the Service's name) if one exists",
    )
    where.add_argument("--route", help="name of the HTTPRoute / VirtualService to follow")
    where.add_argument("--gateway", help="host:port of the Gateway (router gateway; devstack's Traefik)")
    where.add_argument("--port", type=int, default=8500, help="the pods' gRPC port")
    where.add_argument(
        "--target", action="append", default=[], help="host:port of a model server, instead of a Service (repeatable)"
    )
    what = p.add_argument_group("what to send")
    what.add_argument("--model", default="digits")
    what.add_argument("--rate", type=float, default=20.0, help=f"requests per second (at most {MAX_RATE:.0f})")
    what.add_argument("--duration", type=float, default=30.0, help=f"seconds (at most {MAX_DURATION:.0f})")
    what.add_argument("--count", type=int, help="stop after this many requests")
    what.add_argument("--header", type=_header, action="append", default=[], help="name=value sent by a cohort")
    what.add_argument("--header-share", type=float, default=0.5, help="share of requests carrying the --header's")
    what.add_argument("--feedback-rate", type=float, default=1.0, help="share of answers users rate")
    what.add_argument("--feedback-noise", type=float, default=0.05, help="chance a rating contradicts correctness")
    what.add_argument("--seed", type=int, default=0)
    what.add_argument("--sequential", action="store_true", help="send the held-out samples in order, not at random")
    what.add_argument("--timeout", type=float, default=5.0, help="per-request deadline, seconds")
    out = p.add_argument_group("metrics")
    out.add_argument("--metrics-address", default="127.0.0.1:0", help="loopback host:port for /metrics")
    out.add_argument(
        "--register-prometheus", type=Path, metavar="STATE_DIR", help="add /metrics as a file_sd target there"
    )
    out.add_argument("--job", default="traffic", help="Prometheus job label of the registered target")
    return p


def build_resolver(args: argparse.Namespace) -> Resolver:
    if args.target:
        endpoints = [Endpoint(*split_host_port(target)) for target in args.target]
        return ServiceResolver(StaticEndpoints({"targets": endpoints}), "targets")
    if args.kubeconfig is None or args.service is None:
        raise SystemExit("give --kubeconfig and --service (or --target host:port)")
    from devstack.traffic.kube import resolver_for_service

    return resolver_for_service(
        args.kubeconfig, args.namespace, args.service, args.port, args.router, args.route, gateway=args.gateway
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = TrafficConfig(
            model=args.model,
            rate=args.rate,
            duration=args.duration,
            count=args.count,
            headers=dict(args.header),
            header_share=args.header_share if args.header else 0.0,
            feedback_rate=args.feedback_rate,
            feedback_noise=args.feedback_noise,
            seed=args.seed,
            sequential=args.sequential,
            timeout=args.timeout,
        )
        resolver = build_resolver(args)
        from devstack import prometheus
        from devstack.models import load_holdout

        inputs, labels = load_holdout()
        generator = TrafficGenerator(config, resolver, inputs, labels, name=args.job)
        address = generator.serve_metrics(args.metrics_address)
    except (ValueError, NonLoopbackAddress) as exc:
        print(f"devstack.traffic: {exc}", file=sys.stderr)
        return 2
    print(f"devstack.traffic: metrics on http://{address}/metrics", file=sys.stderr, flush=True)
    if args.register_prometheus:
        prometheus.register_target(args.register_prometheus, args.job, address, {"component": "traffic-generator"})
    try:
        stats = generator.run()
    except KeyboardInterrupt:
        generator.stop()
        stats = generator.stats
    except NonLoopbackAddress as exc:
        print(f"devstack.traffic: {exc}", file=sys.stderr)
        return 2
    finally:
        generator.close()
        if args.register_prometheus:
            prometheus.unregister_target(args.register_prometheus, args.job, address)
    summary = {
        "sent": stats.sent,
        "answered": stats.answered,
        "mirrored": stats.mirrored,
        "codes": dict(stats.codes),
        "versions": dict(stats.versions),
        "accuracy": {version: stats.accuracy(version) for version, _ in sorted(stats.outcomes)},
    }
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if stats.answered else 1


if __name__ == "__main__":
    sys.exit(main())
