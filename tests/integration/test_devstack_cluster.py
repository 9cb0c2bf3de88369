"""The shared devstack behaves like a real cluster: version, controllers, scheduler, tokens, kwok at scale."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

import pytest
import yaml

from devstack import build, kwok
from devstack.cluster import POD_RUNNER_NODE, SERVICE_CIDR
from devstack.testing import Cluster, wait_for

pytestmark = pytest.mark.cluster


def _deployment(name: str, replicas: int, on_fake_nodes: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.invalid/fake:1"}]}
    if on_fake_nodes:
        spec["nodeSelector"] = kwok.FAKE_NODE_SELECTOR
        spec["tolerations"] = [kwok.FAKE_NODE_TOLERATION]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def _running_pods(cluster: Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = cluster.get("pods", namespace=namespace, selector=selector)
    return [p for p in pods if p.get("status", {}).get("phase") == "Running"]


def test_api_server_is_ready_and_reports_the_built_version(cluster: Cluster) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == build.K8S_VERSION
    assert version["clientVersion"]["gitVersion"] == build.K8S_VERSION


def test_services_get_cluster_ips_from_the_loopback_service_range(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        namespace=namespace,
    )
    ip = ipaddress.ip_address(cluster.get("service", "web", namespace=namespace)["spec"]["clusterIP"])
    assert ip in ipaddress.ip_network(SERVICE_CIDR)
    assert ip.is_loopback, "a ClusterIP outside 127/8 could send stray traffic off this machine"


def _as_bearer(cluster: Cluster, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with nothing but the token (the admin kubeconfig's client certificate would win otherwise)."""
    ca = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["certificate-authority"]
    identity = ["--kubeconfig=/dev/null", f"--server={cluster.api_server}", f"--certificate-authority={ca}"]
    return cluster.kubectl(*identity, f"--token={token}", *args, check=False)


def test_service_account_tokens_are_issued_and_authenticate(cluster: Cluster, namespace: str) -> None:
    token = cluster.kubectl("create", "token", "default", "-n", namespace, "--duration=10m").stdout.strip()
    whoami = _as_bearer(cluster, token, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"
    # RBAC is on: a bare service account may not list pods elsewhere.
    denied = _as_bearer(cluster, token, "get", "pods", "-n", "kube-system")
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_deployment_makes_a_replicaset_whose_pods_are_scheduled_and_collected(cluster: Cluster, namespace: str) -> None:
    cluster.kwok_nodes(3)
    cluster.apply(_deployment("sched", 2, on_fake_nodes=True), namespace=namespace)

    replicasets = wait_for(
        lambda: cluster.get("replicasets", namespace=namespace, selector="app=sched"),
        30,
        message="a ReplicaSet for the Deployment",
    )
    owner = replicasets[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Deployment", "sched")

    running = wait_for(
        lambda: len(pods := _running_pods(cluster, namespace, "app=sched")) == 2 and pods,
        60,
        message="2 scheduled, Running pods",
    )
    assert {p["spec"]["nodeName"] for p in running} <= {f"{kwok.NODE_PREFIX}{i}" for i in range(3)}

    cluster.kubectl("delete", "deployment", "sched", "-n", namespace, "--wait=false")
    wait_for(
        lambda: not cluster.get("replicasets", namespace=namespace, selector="app=sched"),
        60,
        message="the garbage collector removing the ReplicaSet",
    )


def test_300_fake_pods_reach_running_on_kwok_nodes_and_leave_the_pod_runner_node_alone(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kwok_nodes(3)
    before = _pods_on_node(cluster, POD_RUNNER_NODE)
    cluster.apply(_deployment("scale", 300, on_fake_nodes=True), namespace=namespace)

    wait_for(
        lambda: len(_running_pods(cluster, namespace, "app=scale")) == 300,
        240,
        interval=1.0,
        message="300 Running pods on kwok nodes",
    )
    pods = cluster.get("pods", namespace=namespace, selector="app=scale")
    assert all(p["spec"]["nodeName"].startswith(kwok.NODE_PREFIX) for p in pods)
    assert all(
        ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(kwok.POD_CIDR, strict=False) for p in pods
    )
    assert _pods_on_node(cluster, POD_RUNNER_NODE) == before
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")}
    if POD_RUNNER_NODE in nodes:
        assert nodes[POD_RUNNER_NODE]["metadata"].get("labels", {}).get(kwok.NODE_LABEL_KEY) != kwok.NODE_LABEL_VALUE

    cluster.kubectl("scale", "deployment", "scale", "-n", namespace, "--replicas=0")
    wait_for(
        lambda: not cluster.get("pods", namespace=namespace, selector="app=scale"),
        120,
        interval=1.0,
        message="kwok deleting 300 fake pods",
    )


def _pods_on_node(handle: Cluster, node: str) -> list[str]:
    listing = handle.kubectl("get", "pods", "-A", f"--field-selector=spec.nodeName={node}", "-o", "json")
    pods = json.loads(listing.stdout)["items"]
    return sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)


def test_pods_without_the_kwok_toleration_never_land_on_fake_nodes(cluster: Cluster, namespace: str) -> None:
    cluster.kwok_nodes(3)
    cluster.apply(_deployment("plain", 3, on_fake_nodes=False), namespace=namespace)

    def placement() -> list[str] | None:
        pods = cluster.get("pods", namespace=namespace, selector="app=plain")
        conditions = [
            next((c for c in p.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), None)
            for p in pods
        ]
        if len(pods) < 3 or any(c is None for c in conditions):
            return None
        return [
            p["spec"].get("nodeName") or f"unschedulable: {c['message']}" for p, c in zip(pods, conditions, strict=True)
        ]

    placed = wait_for(placement, 60, message="the scheduler deciding on 3 pods")
    assert not any(str(node).startswith(kwok.NODE_PREFIX) for node in placed)
    if POD_RUNNER_NODE in {n["metadata"]["name"] for n in cluster.get("nodes")}:
        assert placed == [POD_RUNNER_NODE] * 3
    else:
        assert all("untolerated taint" in str(node) for node in placed)


def test_endpoint_slices_accept_the_loopback_addresses_pods_run_on(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-manual", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.1.0.7"], "conditions": {"ready": True}}],
        },
        namespace=namespace,
    )
    stored = cluster.get("endpointslice", "web-manual", namespace=namespace)
    assert stored["endpoints"][0]["addresses"] == ["127.1.0.7"]
    # Everything else is still validated: an unspecified address stays invalid.
    refused = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({**stored, "metadata": {"name": "bad"}, "endpoints": [{"addresses": ["0.0.0.0"]}]}),
        check=False,
    )
    assert refused.returncode != 0
    assert "may not be unspecified" in refused.stderr


def test_the_kubernetes_service_points_at_the_real_api_server(cluster: Cluster) -> None:
    port = int(cluster.api_server.rsplit(":", 1)[1])
    slices = wait_for(
        lambda: cluster.get("endpointslices", namespace="default", selector="kubernetes.io/service-name=kubernetes"),
        30,
        message="the API server publishing its own EndpointSlice",
    )
    assert slices[0]["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert slices[0]["ports"][0]["port"] == port
