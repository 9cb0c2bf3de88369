"""The Node object and its Lease heartbeat, as a kubelet registers and keeps them.

The node lifecycle controller judges a node by its Lease in
``kube-node-lease``: renewed every 10 s with a 40 s duration, as the kubelet
does.  The Ready condition is re-posted every minute so that a node marked
Unknown during a pause of this runner becomes Ready again.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from datetime import UTC, datetime

from devstack.podrunner.clock import now_rfc3339
from devstack.podrunner.downward import NODE_ALLOCATABLE
from devstack.podrunner.kube import JSON, ApiError, Kube

log = logging.getLogger(__name__)
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
STATUS_EVERY_RENEWALS = 6
KUBELET_VERSION = "v1.34.4-devstack"


def node_manifest(name: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "devstack",
                "devstack.modelrelease.io/pod-runner": "true",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
    }


def node_status(host_ip: str, name: str) -> JSON:
    now = now_rfc3339()

    def condition(kind: str, status: str, reason: str, message: str) -> JSON:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": dict(NODE_ALLOCATABLE),
        "allocatable": dict(NODE_ALLOCATABLE),
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "devstack pod runner"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "devstack pod runner"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "devstack pod runner"),
            condition("Ready", "True", "KubeletReady", "devstack pod runner is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": host_ip}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": "devstack",
            "systemUUID": "devstack",
            "bootID": "devstack",
            "kernelVersion": platform.release(),
            "osImage": "devstack pod runner",
            "containerRuntimeVersion": "devstack://local-processes",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


class NodeAgent:
    def __init__(self, kube: Kube, name: str, host_ip: str) -> None:
        self.kube = kube
        self.name = name
        self.host_ip = host_ip
        self.uid = ""

    async def register(self) -> None:
        try:
            node = await self.kube.create("/api/v1/nodes", node_manifest(self.name))
            log.info("registered node %s", self.name)
        except ApiError as error:
            if error.status != 409:
                raise
            node = await self.kube.merge_patch(f"/api/v1/nodes/{self.name}", node_manifest(self.name))
        self.uid = node["metadata"]["uid"]
        await self.post_status()

    async def post_status(self) -> None:
        # Unschedulable / not-ready taints are the node lifecycle controller's; it removes them once Ready is True.
        await self.kube.merge_patch(
            f"/api/v1/nodes/{self.name}/status", {"status": node_status(self.host_ip, self.name)}
        )

    def _lease(self) -> JSON:
        renew = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}],
            },
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": renew},
        }

    async def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        lease = self._lease()
        try:
            await self.kube.merge_patch(path, {"spec": lease["spec"]})
        except ApiError as error:
            if error.status != 404:
                raise
            await self.kube.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)

    async def heartbeat_forever(self) -> None:
        renewals = 0
        while True:
            try:
                await self.renew_lease()
                renewals += 1
                if renewals % STATUS_EVERY_RENEWALS == 0:
                    await self.post_status()
            except (ApiError, OSError) as error:
                log.warning("node heartbeat failed: %s", error)
            await asyncio.sleep(RENEW_SECONDS)  # the heartbeat's period
