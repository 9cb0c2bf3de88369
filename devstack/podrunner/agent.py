"""The node agent: register the node, watch the pods bound to it, and run a PodWorker for each.

Pods are found with a watch on ``spec.nodeName=<node>`` (a relist only when
the API server says the resource version is too old), so an idle node costs
one open connection and a Lease renewal every 10 s.  kwok's fake nodes have
other names: their pods never reach this watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from urllib.parse import urlsplit

from devstack import cache_root
from devstack.podrunner import leftovers
from devstack.podrunner.ipam import IPAllocator, SubnetClaim
from devstack.podrunner.kube import JSON, ApiError, Kube
from devstack.podrunner.node import NodeAgent
from devstack.podrunner.pod import NodeContext, PodWorker, pod_key

log = logging.getLogger(__name__)
WATCH_TIMEOUT_SECONDS = 290
HOST_IP = "127.0.0.1"


class PodRunner:
    def __init__(self, kube: Kube, node_name: str, state_dir: Path) -> None:
        self.kube = kube
        self.node_name = node_name
        self.state_dir = state_dir
        self.workers: dict[str, tuple[PodWorker, asyncio.Task[None]]] = {}
        self._claim: SubnetClaim | None = None
        self._context: NodeContext | None = None
        self._chores: set[asyncio.Task[None]] = set()

    def _setup(self) -> NodeContext:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        killed = leftovers.kill(self.state_dir)
        if killed:
            log.warning("killed %d process(es) left by a previous pod runner: %s", len(killed), killed)
        ipam_file = self.state_dir / "ipam.json"
        self._claim = SubnetClaim.acquire(cache_root() / "podrunner-subnets", IPAllocator.saved_subnet(ipam_file))
        allocator = IPAllocator(ipam_file, self._claim.subnet)
        log.info("pod IPs from 127.%d.0.0/16", self._claim.subnet)
        api = urlsplit(self.kube.host)
        return NodeContext(
            kube=self.kube,
            node_name=self.node_name,
            host_ip=HOST_IP,
            api_host=api.hostname or "127.0.0.1",
            api_port=api.port or 443,
            state_dir=self.state_dir,
            allocator=allocator,
            fixed_mounts={"/models": cache_root() / "models"},
        )

    async def run(self, stop: asyncio.Event) -> None:
        self._context = self._setup()
        node = NodeAgent(self.kube, self.node_name, HOST_IP)
        await node.register()
        background = [
            asyncio.create_task(node.heartbeat_forever(), name="heartbeat"),
            asyncio.create_task(self._watch_forever(), name="watch"),
        ]
        log.info("pod runner for node %s is up; state in %s", self.node_name, self.state_dir)
        try:
            await stop.wait()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.halt_all()
            if self._claim is not None:
                self._claim.close()

    async def halt_all(self) -> None:
        """Stop every pod's processes (SIGTERM, then SIGKILL after its grace period) without touching the API."""
        workers = list(self.workers.values())
        await asyncio.gather(*(worker.halt() for worker, _ in workers), return_exceptions=True)
        for _, task in workers:
            task.cancel()
        await asyncio.gather(*(task for _, task in workers), return_exceptions=True)

    # -- pods --------------------------------------------------------------

    async def _watch_forever(self) -> None:
        first = True
        while True:
            try:
                version = await self._relist(first)
                first = False
                while version:
                    version = await self._watch_from(version)
            except ApiError as error:
                log.warning("pod watch failed: %s; relisting", error)
                await asyncio.sleep(1.0)  # pacing before a relist after an API error

    async def _relist(self, first: bool) -> str:
        listing = await self.kube.get("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node_name}")
        pods = listing.get("items") or []
        live = {pod["metadata"]["uid"] for pod in pods}
        if first and self._context is not None:
            self._context.allocator.retain(live)
        for pod in pods:
            self._observe(pod)
        for uid, (worker, _) in list(self.workers.items()):
            if uid not in live:
                worker.vanished()
        return str(listing["metadata"]["resourceVersion"])

    async def _watch_from(self, version: str) -> str:
        """Follow the watch from ``version``; return where to resume, or "" when a relist is needed."""
        async for event in self.kube.watch(
            "/api/v1/pods",
            fieldSelector=f"spec.nodeName={self.node_name}",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=WATCH_TIMEOUT_SECONDS,
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                log.info("pod watch ended: %s", obj.get("message"))
                return ""
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                entry = self.workers.get(obj["metadata"]["uid"])
                if entry is not None:
                    entry[0].vanished()
                continue
            self._observe(obj)
        return version

    def _observe(self, pod: JSON) -> None:
        if pod.get("spec", {}).get("nodeName") != self.node_name or self._context is None:
            return
        uid = pod["metadata"]["uid"]
        entry = self.workers.get(uid)
        if entry is not None:
            entry[0].update(pod)
            return
        phase = pod.get("status", {}).get("phase")
        if pod["metadata"].get("deletionTimestamp"):
            # Deleted while no worker ran it (e.g. across a runner restart): nothing runs, finish the deletion.
            task = asyncio.create_task(self._finish_deletion(pod))
            self._chores.add(task)
            task.add_done_callback(self._chores.discard)
            return
        if phase in ("Succeeded", "Failed"):
            return  # a finished pod is never started again
        worker = PodWorker(self._context, pod)
        task = asyncio.create_task(self._supervise(worker), name=f"pod-{pod_key(pod)}")
        self.workers[uid] = (worker, task)

    async def _supervise(self, worker: PodWorker) -> None:
        log.info("pod %s (%s) assigned to this node", worker.key, worker.uid)
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s: worker failed", worker.key)
        finally:
            self.workers.pop(worker.uid, None)
            log.info("pod %s done", worker.key)

    async def _finish_deletion(self, pod: JSON) -> None:
        meta = pod["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        with contextlib.suppress(ApiError):
            await self.kube.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
        if self._context is not None:
            self._context.allocator.release(meta["uid"])
