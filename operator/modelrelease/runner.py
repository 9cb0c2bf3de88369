"""Run the operator: kopf's watches, the per-release scheduler, the Lease, and the metrics endpoint, in one loop.

Why kopf runs in standalone mode: two replicas are kept apart by the Lease
(``leader``), which needs no CRD; kopf's own peering would need one.
kopf's event posting is off because the operator posts its own, worded
events; kopf's would only repeat its log lines on the release.

Why the operator takes SIGTERM over from kopf once kopf is running: kopf's
own handler starts a graceful shutdown during which this replica still
holds, and renews, the Lease; under load that shutdown took 5-10 s, and the
standby could only take over after it.  On SIGTERM the elector is stopped
first (it releases the Lease at once, and every write is fenced from then
on), and kopf is stopped through its stop flag, so the handover no longer
waits for the rest of the shutdown.

Why ``/healthz`` waits for kopf's insights and not only its ready flag: kopf
raises the flag once its startup handlers ran, before it has reached the API
server at all.  Found by running the chart's pods: kopf could not reach the
API server and the pods were Ready for a minute.  The insights say that
kopf's own discovery succeeded and that ModelReleases are among the watched
resources (so the CRD is served): the watches are starting.

Why ``/healthz`` watches the Lease task: a replica whose elector has ended
can never lead again, yet kopf keeps it looking alive.  The elector survives
every I/O error by itself (``leader``), so its end is a bug; ``/healthz`` then
fails and the kubelet restarts the pod instead of leaving a replica that
silently never acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import kopf
from kopf._cogs.structs.references import Insights  # what kopf watches; not re-exported by kopf
from kubernetes_asyncio import client, config

from modelrelease import GROUP, PLURAL, metrics
from modelrelease import handlers as _handlers  # noqa: F401  (registers the kopf handlers)
from modelrelease.engine import EngineSettings
from modelrelease.kube.cache import LISTED, ObjectCache, release_of
from modelrelease.kube.client import Kube
from modelrelease.leader import LeaderElector, LeaseConfig
from modelrelease.measure import Analyzer
from modelrelease.namespaces import scope_of
from modelrelease.notify import Notifier, parse_target
from modelrelease.policy import DEFAULT_SERVICE_ACCOUNTS, PrometheusAllowList, ReleasePolicy
from modelrelease.reconcile import OperatorContext, PassOutcome, reconcile
from modelrelease.routing.registry import build_routers
from modelrelease.scheduler import Scheduler
from modelrelease.serving.client import channels, forget_pod
from modelrelease.webhooks import WebhookRunner

log = logging.getLogger("modelrelease.operator")
SERVICE_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
"""Where the kubelet mounts the pod's ServiceAccount token (and where in-cluster clients read it)."""


def watching_releases(insights: Insights) -> bool:
    """kopf discovered the API through its own connection and watches ModelReleases."""
    return insights.ready_resources.is_set() and any(
        resource.group == GROUP and resource.plural == PLURAL for resource in insights.watched_resources
    )


class Health:
    """What ``/healthz`` answers: kopf is ready and no task the operator cannot work without has ended."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        self._ready = ready
        self._vital: list[asyncio.Task[None]] = []

    def watch(self, task: asyncio.Task[None]) -> None:
        """From now on, ``task`` ending (unless cancelled at shutdown) makes the process unhealthy."""
        self._vital.append(task)
        task.add_done_callback(_report_end)

    def __call__(self) -> bool:
        return self._ready() and not any(task.done() for task in self._vital)


def _report_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    log.critical(
        "task %s ended (%s): the operator cannot act without it; /healthz now fails",
        task.get_name(),
        f"{type(error).__name__}: {error}" if error else "returned",
        exc_info=error,
    )


def default_identity() -> str:
    """The pod name in a cluster (a restarted container takes its Lease straight back), else host and pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class RunConfig:
    namespaces: Sequence[str] = ()
    metrics_port: int = 8080
    metrics_host: str = "127.0.0.1"
    prometheus_address: str | None = None
    kubeconfig: Path | None = None
    lease_namespace: str = "default"
    lease_name: str = "modelrelease-operator"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    load_timeout: timedelta = timedelta(minutes=10)
    allowed_prometheus_addresses: Sequence[str] = ()
    allowed_webhook_addresses: Sequence[str] = ()
    notify_webhooks: Sequence[str] = ()
    """Operator-wide notification receivers, ``URL`` or ``FORMAT=URL`` (``notify.parse_target``)."""
    allowed_images: Sequence[str] = ()
    allowed_service_accounts: Sequence[str] = ()
    allow_privileged_pods: bool = False

    def release_policy(self) -> ReleasePolicy:
        """What releases may ask for (modelrelease.policy): the trust model the README describes."""
        return ReleasePolicy(
            prometheus=PrometheusAllowList.of(self.prometheus_address, self.allowed_prometheus_addresses),
            images=tuple(self.allowed_images),
            service_accounts=tuple(dict.fromkeys([*DEFAULT_SERVICE_ACCOUNTS, *self.allowed_service_accounts])),
            allow_privileged_pods=self.allow_privileged_pods,
            webhooks=PrometheusAllowList.of(None, self.allowed_webhook_addresses),
        )


def in_cluster(kubeconfig: Path | None, environ: Mapping[str, str], token: Path = SERVICE_TOKEN) -> bool:
    """In a pod (the kubelet's variables and the ServiceAccount token are there) and no --kubeconfig given.

    As kopf's own login does, a missing token means "not in a pod": the kubeconfig is used then.
    """
    return kubeconfig is None and bool(environ.get("KUBERNETES_SERVICE_HOST")) and token.is_file()


async def _api_client(kubeconfig: Path | None) -> client.ApiClient:
    if in_cluster(kubeconfig, os.environ):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        log.info("API server %s, as the pod's ServiceAccount (in-cluster)", os.environ["KUBERNETES_SERVICE_HOST"])
        return client.ApiClient()
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig) if kubeconfig else None, client_configuration=configuration
    )
    log.info("API server %s, from kubeconfig %s", configuration.host, kubeconfig or "($KUBECONFIG or ~/.kube)")
    return client.ApiClient(configuration)


WAKING_KINDS = frozenset({"Deployment", "Service", "ConfigMap"})
"""Kinds whose changes, once the cache has them, wake their release (so its pass reads the change)."""


def _wake_on_change(scheduler: Scheduler, event_type: str, kind: str, raw: dict[str, object]) -> None:
    """A changed object of a release (not one merely listed): wake the release if the scheduler knows it."""
    owner = release_of(raw)
    if event_type != LISTED and kind in WAKING_KINDS and owner is not None and scheduler.knows(*owner):
        scheduler.wake(*owner)


async def _take_over_signals(ready: asyncio.Event, handler: Callable[[int], None]) -> None:
    """Once kopf runs (it installs its own SIGINT/SIGTERM handlers before it raises ``ready``), install ours."""
    if threading.current_thread() is not threading.main_thread():
        return  # no signals outside the main thread (as kopf)
    await ready.wait()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, handler, signum)


async def run(settings: RunConfig, stop: asyncio.Event | None = None) -> None:
    if settings.kubeconfig is not None:
        # kopf logs in on its own (via the kubernetes client), which reads KUBECONFIG.
        os.environ["KUBECONFIG"] = str(settings.kubeconfig)
    api_client = await _api_client(settings.kubeconfig)
    elector = LeaderElector(
        api_client,
        LeaseConfig(
            namespace=settings.lease_namespace,
            name=settings.lease_name,
            identity=settings.identity,
            lease_duration=settings.lease_duration,
            renew_period=max(1.0, settings.lease_duration / 3),
        ),
        on_elected=lambda: scheduler.wake_all(),
    )
    scope = scope_of(settings.namespaces)
    # The watch cache of the releases' objects (kube.cache): a pass reads it instead of the API server.
    cache = ObjectCache(api_client, namespaces=scope.kopf_namespaces, serves=scope.serves)
    cache.on_change(forget_pod)  # a deleted pod's gRPC channel is closed (serving.client.ChannelPool)
    cache.on_change(lambda event, kind, raw: _wake_on_change(scheduler, event, kind, raw))
    kube = Kube(api_client, may_write=elector.is_leader, cache=cache)
    policy = settings.release_policy()
    context = OperatorContext(
        kube=kube,
        analyzer=Analyzer(settings.prometheus_address, policy.prometheus),
        routers=build_routers(kube),
        settings=EngineSettings(load_timeout=settings.load_timeout),
        policy=policy,
        webhooks=WebhookRunner(policy.webhooks),
        notifier=Notifier([parse_target(t) for t in settings.notify_webhooks], policy.webhooks),
    )

    async def one_pass(namespace: str, name: str) -> PassOutcome:
        return await reconcile(context, namespace, name)

    scheduler = Scheduler(one_pass, may_act=elector.is_leader, time_left=elector.validity_left)
    cache.start()
    ready = asyncio.Event()
    stop_flag = stop or asyncio.Event()
    insights = Insights()
    health = Health(lambda: ready.is_set() and watching_releases(insights))
    runner = await metrics.serve(
        settings.metrics_port, healthy=health, host=settings.metrics_host, describe=elector.describe
    )
    election = asyncio.create_task(elector.run(), name="lease")
    health.watch(election)
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.posting.enabled = False
    log.info(
        "starting: namespaces=%s prometheus=%s allowed-prometheus=%s images=%s service-accounts=%s "
        "privileged-pods=%s lease=%s/%s identity=%s",
        ",".join(settings.namespaces) or "(all)",
        settings.prometheus_address or "(none)",
        policy.prometheus.describe(),
        ",".join(policy.images) or "(any)",
        ",".join(policy.service_accounts) or "(none)",
        "allowed" if policy.allow_privileged_pods else "refused",
        settings.lease_namespace,
        settings.lease_name,
        settings.identity,
    )

    def hand_over_and_stop(signum: int) -> None:
        log.info("%s: handing the Lease over, then stopping", signal.Signals(signum).name)
        election.cancel()  # its end releases the Lease (leader.LeaderElector.run)
        stop_flag.set()

    signals = asyncio.create_task(_take_over_signals(ready, hand_over_and_stop), name="signals")
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=scope.cluster_wide,
            namespaces=scope.kopf_namespaces,
            settings=kopf_settings,
            memo=kopf.Memo(scheduler=scheduler, scope=scope),
            ready_flag=ready,
            stop_flag=stop_flag,
            insights=insights,
        )
    finally:
        signals.cancel()
        await scheduler.close()
        await context.webhooks.close()
        await context.notifier.close()
        await cache.close()
        await channels().close()
        election.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await election
        await runner.cleanup()
        await api_client.close()
        log.info("stopped")
