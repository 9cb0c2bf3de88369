"""The typer application: ``modelrelease run`` and its flags.

Why the heavy imports are inside ``run``: ``modelrelease --help`` and the
kubectl plugin should answer at once, without loading kopf and the clients.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="modelrelease",
    help="Stage TensorFlow Serving model rollouts on Kubernetes, judged from Prometheus.",
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: rich's table cuts long flag names short on an 80-column terminal.
    rich_markup_mode=None,
)


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


@app.callback()
def _root() -> None:
    """modelrelease: stage TensorFlow Serving model rollouts on Kubernetes."""


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace to watch, or a glob (watched cluster-wide, then filtered); repeat for several; !glob excludes. Default: every namespace.",
        ),
    ] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics and /healthz.")] = 8080,
    metrics_host: Annotated[
        str | None, typer.Option(help="Address /metrics listens on; default $POD_IP, else 127.0.0.1.")
    ] = None,
    log_format: Annotated[LogFormatChoice, typer.Option(help="text or json (one object per line).")] = (
        LogFormatChoice.text
    ),
    prometheus_address: Annotated[
        str | None,
        typer.Option(help="Prometheus for releases that do not set spec.analysis.prometheus.address."),
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig file; default: in-cluster config, else $KUBECONFIG or ~/.kube.")
    ] = None,
    lease_namespace: Annotated[
        str | None, typer.Option(help="Namespace of the leader Lease; default $POD_NAMESPACE, else default.")
    ] = None,
    lease_name: Annotated[str, typer.Option(help="Name of the leader Lease.")] = "modelrelease-operator",
    identity: Annotated[
        str | None, typer.Option(help="This replica's name in the Lease; default $POD_NAME, else host-pid.")
    ] = None,
    load_timeout: Annotated[
        str, typer.Option(help="How long a candidate's model may take to become AVAILABLE before it is rolled back.")
    ] = "10m",
    lease_duration: Annotated[
        float, typer.Option(min=2.0, help="Seconds without renewal before another replica may take over.")
    ] = 15.0,
    allowed_prometheus_address: Annotated[
        list[str] | None,
        typer.Option(
            help="A Prometheus a release may name in spec.analysis.prometheus.address (exact URL; repeat for "
            "several). --prometheus-address is always allowed; default: nothing else.",
        ),
    ] = None,
    allowed_image: Annotated[
        list[str] | None,
        typer.Option(
            help="Glob a release's images must match, e.g. 'tensorflow/serving:*' (repeat for several). "
            "Default: any image.",
        ),
    ] = None,
    allowed_service_account: Annotated[
        list[str] | None,
        typer.Option(
            help="ServiceAccount a release's pods may run as besides the namespace's 'default' (the one pods "
            "get when they name none); repeat for several.",
        ),
    ] = None,
    allow_privileged_pods: Annotated[
        bool,
        typer.Option(
            "--allow-privileged-pods",
            help="Let releases set privileged pod fields (hostNetwork/PID/IPC, hostPath, privileged, added "
            "capabilities...). Default: refused.",
        ),
    ] = False,
) -> None:
    """Run the operator until SIGINT or SIGTERM."""
    import os

    from modelrelease import logs
    from modelrelease.api.duration import parse_duration
    from modelrelease.depth import allow_deepest_objects
    from modelrelease.runner import RunConfig, default_identity
    from modelrelease.runner import run as run_operator

    logs.configure(log_format.value)
    allow_deepest_objects()
    settings = RunConfig(
        namespaces=tuple(namespace or ()),
        metrics_port=metrics_port,
        metrics_host=metrics_host or os.environ.get("POD_IP") or "127.0.0.1",
        prometheus_address=prometheus_address,
        kubeconfig=kubeconfig,
        lease_namespace=lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
        lease_name=lease_name,
        identity=identity or default_identity(),
        lease_duration=lease_duration,
        load_timeout=parse_duration(load_timeout),
        allowed_prometheus_addresses=tuple(allowed_prometheus_address or ()),
        allowed_images=tuple(allowed_image or ()),
        allowed_service_accounts=tuple(allowed_service_account or ()),
        allow_privileged_pods=allow_privileged_pods,
    )
    asyncio.run(run_operator(settings))
