"""Helpers for running single reconcile passes from the test process against the devstack API server (no tests here).

Why passes and not an operator process: these tests need to put the release
into a precise state (the status a crashed operator left, a request
re-written between a pass's read and its removal) and to see what one pass
did.  ``run_pass`` is the operator's own ``reconcile`` with a real
``Kube`` on the real API server; only the moment it runs is the test's.

The release's pods are parked (a nodeSelector no node has), so no model
server starts: these tests are about what the operator writes, not serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes_asyncio import client, config

from devstack.scenario import Release, digits_release
from devstack.testing import Cluster
from modelrelease.engine import EngineSettings
from modelrelease.kube.client import Kube
from modelrelease.measure import Analyzer
from modelrelease.reconcile import OperatorContext, PassOutcome, reconcile
from modelrelease.routing.replicas import ReplicasRouter

T = TypeVar("T")

PARKED = {"nodeSelector": {"modelrelease.io/test-node": "none"}}
"""A podTemplate whose pods are never scheduled: Deployments and pods exist, no process runs."""
STAGES = [{"name": "canary", "weight": 50, "duration": "1m"}, {"name": "full", "weight": 100}]


def manifest(name: str, namespace: str, version: int, replicas: int = 1) -> dict[str, Any]:
    return digits_release(
        name, namespace, version, replicas, serving={"podTemplate": PARKED}, stages=STAGES, analysis={"interval": "30s"}
    )


def with_kube(cluster: Cluster, use: Callable[[Kube], Coroutine[Any, Any, T]], kube_type: type[Kube] = Kube) -> T:
    """Run ``use(kube)`` on a fresh event loop with an API client for the cluster (the client lives in that loop)."""

    async def run() -> T:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            return await use(kube_type(api))

    return asyncio.run(run())


def run_pass(
    cluster: Cluster,
    release: Release,
    kube_type: type[Kube] = Kube,
    settings: EngineSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PassOutcome:
    """One reconcile pass of ``release``, exactly as the operator runs it."""

    async def one(kube: Kube) -> PassOutcome:
        context = OperatorContext(
            kube=kube,
            analyzer=Analyzer(None),
            routers={"replicas": ReplicasRouter(kube)},
            settings=settings or EngineSettings(),
            clock=clock or (lambda: datetime.now(UTC)),
        )
        return await reconcile(context, release.namespace, release.name)

    return with_kube(cluster, one, kube_type)


def write_status(cluster: Cluster, release: Release, status: dict[str, Any]) -> None:
    """Write the status subresource as an operator would have (kubectl, merge patch)."""
    cluster.kubectl(
        "patch",
        "modelrelease",
        release.name,
        "-n",
        release.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def exists(cluster: Cluster, kind: str, name: str, namespace: str) -> bool:
    return cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0


def get_json(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    """The object as stored, managedFields included (who applied which field)."""
    shown = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--show-managed-fields")
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def written_after(method: str, write: Callable[[], None]) -> type[Kube]:
    """A real ``Kube`` that lets ``write`` change the release right after its first call of ``method`` returns.

    That is another writer (a person, a second replica) getting in between
    two steps of a pass, made deterministic: after ``get_release``, it is
    between the pass's read and its writes; after ``patch_status``, between
    the status write and the actions.
    """
    original = getattr(Kube, method)
    pending = [write]

    async def wrapped(self: Kube, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        while pending:
            await asyncio.to_thread(pending.pop())
        return result

    return type(f"WrittenAfter_{method}", (Kube,), {method: wrapped})
