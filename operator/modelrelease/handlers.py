"""kopf wiring only: watch releases and their Deployments, and wake the release's task.

Why ``@kopf.on.event`` and not create/update/resume handlers: those keep
per-handler progress and a diff base on the object (kopf writes them into
``status.kopf``, which this CRD's schema prunes, or into annotations, an
extra write per change) and need a finalizer for timers and daemons.  The
operator keeps all rollout state in its own status and is level-triggered,
so it only needs to know *that* something changed:

- the initial listing (kopf's event type None) is the resume of every
  existing release after a restart, ADDED is a create, and a MODIFIED event
  is an update when the generation moved past ``status.observedGeneration``
  or a manual request annotation is present; the operator's own status
  writes wake nothing;
- a change to a Deployment or Service the operator owns wakes its release
  (pods became ready; someone deleted or edited one), so nothing waits for
  the next interval without reason, and an idle release, which is never
  polled, still puts back a Service deleted by hand;
- a change to an HTTPRoute or VirtualService labelled with a release (the
  gatewayApi and istio routers label the user's route they edit) wakes that
  release, so someone else's edit is put back on the next pass;
- a release being deleted that still carries the route finalizer gets a
  pass, which puts its route back and removes the finalizer;
- DELETED stops the release's task; owner references remove its objects.

Everything else (reading the world, the engine, applying, status) is in
``reconcile``; the timing is in ``scheduler``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import kopf

from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.kube.manifests import LABEL_MANAGED_BY, LABEL_RELEASE, MANAGED_BY
from modelrelease.observe import read_requests
from modelrelease.scheduler import Scheduler

ROUTE_FINALIZER = "modelrelease.io/route"
"""reconcile.FINALIZER (not imported: handlers stay free of the pass's imports)."""


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster credentials, else the kubeconfig named by ``--kubeconfig`` (read when kopf logs in, not at import).

    In a pod the API server's address is ``KUBERNETES_SERVICE_HOST``/``PORT``, as
    client-go and the kubernetes clients (and so the leader elector) read it;
    kopf's own service-account login would use ``kubernetes.default.svc:443``,
    which needs cluster DNS and the Service's port, and could reach a different
    address than the elector does.
    """
    found = kopf.login_with_service_account(**kwargs)
    if found is None:
        return kopf.login_with_kubeconfig(**kwargs)
    return dataclasses.replace(found, server=in_cluster_server(os.environ) or found.server)


def in_cluster_server(environ: Mapping[str, str]) -> str | None:
    """``https://host:port`` from the variables the kubelet sets in every pod (IPv6 hosts in brackets)."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def wants_a_pass(event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a watch event on a release can change what the operator should do."""
    if event_type in (None, "ADDED"):
        return True
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return ROUTE_FINALIZER in (metadata.get("finalizers") or [])
    if metadata.get("generation") != status.get("observedGeneration"):
        return True
    return bool(read_requests(metadata.get("annotations")))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def release_changed(type: str, body: kopf.Body, name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    scheduler: Scheduler = memo["scheduler"]
    if namespace is None or not memo["scope"].serves(namespace):
        return
    if type == "DELETED":
        await scheduler.forget(namespace, name)
    elif wants_a_pass(type, body):
        scheduler.wake(namespace, name)


OWNED: Mapping[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RELEASE: kopf.PRESENT}


@kopf.on.event("apps", "v1", "deployments", labels=OWNED)
async def deployment_changed(type: str, labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any) -> None:
    _wake_owner(type, labels, namespace, memo["scheduler"])


@kopf.on.event("", "v1", "services", labels=OWNED)
async def service_changed(type: str, labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any) -> None:
    _wake_owner(type, labels, namespace, memo["scheduler"])


ROUTE_OF_A_RELEASE: Mapping[str, Any] = {LABEL_RELEASE: kopf.PRESENT}


@kopf.on.event("gateway.networking.k8s.io", "v1", "httproutes", labels=ROUTE_OF_A_RELEASE)
async def http_route_changed(type: str, labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any) -> None:
    _wake_owner(type, labels, namespace, memo["scheduler"])


@kopf.on.event("networking.istio.io", "v1", "virtualservices", labels=ROUTE_OF_A_RELEASE)
async def virtual_service_changed(
    type: str, labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any
) -> None:
    _wake_owner(type, labels, namespace, memo["scheduler"])


def _wake_owner(event_type: str | None, labels: Mapping[str, str], namespace: str | None, scheduler: Scheduler) -> None:
    release = labels.get(LABEL_RELEASE)
    # type is None for the initial listing: nothing changed, the release's own listing resumes it.
    # A release the scope does not serve is never known to the scheduler, so needs no check here.
    if event_type is not None and release and namespace is not None and scheduler.knows(namespace, release):
        scheduler.wake(namespace, release)
