"""The pod runner on the real devstack: pods become real processes on their own 127.x addresses."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devstack.testing import Cluster, wait_for

pytestmark = pytest.mark.cluster
NODE = "devstack-node"
PROBE_SERVER = "devstack/probe-server:1"


def _deployment(name: str, replicas: int, args: list[str], ready_path: str = "/ready") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": PROBE_SERVER,
                            "args": ["--port=8080", *args],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": ready_path, "port": "http"}, "periodSeconds": 1},
                        }
                    ],
                },
            },
        },
    }


def _pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    return list(cluster.get("pods", namespace=namespace, selector=f"app={app}"))


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _pid(pod: dict[str, Any]) -> int:
    container_id = pod["status"]["containerStatuses"][0]["containerID"]
    return int(container_id.removeprefix("devstack://"))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return dict(json.loads(response.read()))


def test_deployment_pods_are_real_processes_that_turn_ready_by_probe_scale_down_and_stop(
    cluster: Cluster, namespace: str
) -> None:
    created = time.monotonic()
    cluster.apply(_deployment("web", 3, ["--ready-after=4"]), namespace)

    def running_with_ip() -> list[dict[str, Any]] | None:
        pods = _pods(cluster, namespace, "web")
        started = [p for p in pods if p.get("status", {}).get("podIP") and p["status"].get("containerStatuses")]
        ok = len(started) == 3 and all("containerID" in p["status"]["containerStatuses"][0] for p in started)
        return started if ok else None

    pods = wait_for(running_with_ip, 30, message="3 pods running with an IP")
    # The probe server answers /ready with 503 for its first 4 s: the pods are running but not yet Ready.
    assert not any(_ready(p) for p in pods), "a pod was Ready before its readiness probe could pass"
    assert {p["spec"]["nodeName"] for p in pods} == {NODE}
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 3
    assert all(ip.startswith("127.") and ip != "127.0.0.1" for ip in ips)
    pids = {p["metadata"]["name"]: _pid(p) for p in pods}
    for pod in pods:
        pid, ip = _pid(pod), pod["status"]["podIP"]
        assert _alive(pid)
        assert f"--host={ip}" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        answer = wait_for(lambda ip=ip: _try_get(f"http://{ip}:8080/"), 10, message=f"{ip}:8080 answers")
        assert answer["podIP"] == ip

    wait_for(lambda: all(_ready(p) for p in _pods(cluster, namespace, "web")), 30, message="all 3 pods Ready")
    print(f"deployment created -> 3 pods Ready: {time.monotonic() - created:.1f} s (probe passes after 4 s)")

    cluster.kubectl("scale", "deployment/web", "--replicas=1", "-n", namespace)
    wait_for(lambda: len(_pods(cluster, namespace, "web")) == 1, 30, message="scaled to one pod")
    survivor = _pods(cluster, namespace, "web")[0]
    stopped = [pid for name, pid in pids.items() if name != survivor["metadata"]["name"]]
    assert len(stopped) == 2
    wait_for(lambda: not any(_alive(pid) for pid in stopped), 10, message="the two scaled-down processes exited")
    assert _alive(pids[survivor["metadata"]["name"]])

    cluster.kubectl("delete", "deployment/web", "-n", namespace, "--wait=true")
    wait_for(lambda: not _pods(cluster, namespace, "web"), 30, message="the last pod removed")
    wait_for(lambda: not _alive(pids[survivor["metadata"]["name"]]), 10, message="the last process exited")


def _try_get(url: str) -> dict[str, Any] | None:
    try:
        return _get_json(url)
    except OSError:
        return None


def _api_accepts_loopback_endpoints(cluster: Cluster, namespace: str) -> bool:
    probe = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "loopback-check"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.9.9.9"]}],
        "ports": [],
    }
    result = cluster.kubectl(
        "create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
    )
    return result.returncode == 0


def test_service_endpointslice_lists_exactly_the_ready_pods(cluster: Cluster, namespace: str) -> None:
    if not _api_accepts_loopback_endpoints(cluster, namespace):
        pytest.skip(
            "kube-apiserver rejects loopback EndpointSlice addresses (ValidateEndpointIP); "
            "devstack's build must relax that check for 127.x pod IPs"
        )
    cluster.apply(_deployment("ready", 2, []), namespace)
    cluster.apply(_deployment("never", 1, ["--ready-after=3600"]), namespace)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"tier": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    cluster.apply(service, namespace)

    def slices_match() -> bool:
        pods = [*_pods(cluster, namespace, "ready"), *_pods(cluster, namespace, "never")]
        expected = {p["status"]["podIP"] for p in pods if _ready(p)}
        slices = cluster.get("endpointslices", namespace=namespace, selector="kubernetes.io/service-name=web")
        listed = {
            address
            for s in slices
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")
            for address in e["addresses"]
        }
        return len(expected) == 2 and listed == expected

    wait_for(slices_match, 40, message="the EndpointSlice lists exactly the two ready pods")


def test_crashing_container_restarts_with_crash_loop_back_off(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crasher"},
        "spec": {"containers": [{"name": "c", "image": PROBE_SERVER, "args": ["--exit-after=0.2", "--exit-code=3"]}]},
    }
    cluster.apply(pod, namespace)

    def in_back_off() -> dict[str, Any] | None:
        status = cluster.get("pod", "crasher", namespace)["status"].get("containerStatuses") or [{}]
        waiting = status[0].get("state", {}).get("waiting", {})
        return status[0] if waiting.get("reason") == "CrashLoopBackOff" else None

    status = wait_for(in_back_off, 30, message="CrashLoopBackOff")
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off 10s restarting failed container=c" in status["state"]["waiting"]["message"]


def test_unknown_image_reports_err_image_pull(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nowhere"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/unknown:1"}]},
    }
    cluster.apply(pod, namespace)
    seen: set[str] = set()

    def pull_failed() -> bool:
        status = cluster.get("pod", "nowhere", namespace)["status"]
        waiting = (status.get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {})
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):  # ContainerCreating (no message) may come first
            seen.add(waiting["reason"])
            assert "registry.example/unknown:1" in waiting.get("message", "")
        return status.get("phase") == "Pending" and bool(seen & {"ErrImagePull", "ImagePullBackOff"})

    wait_for(pull_failed, 30, interval=0.1, message="ErrImagePull")


RBAC_SCRIPT = """
import json, os, sys
from kubernetes import client, config
config.load_kube_config()  # KUBECONFIG: built by the pod runner from the pod's projected token
api = client.ApiClient()
ns = os.environ["NS"]
core = client.CoreV1Api(api)
def status(call):
    try:
        call(ns)
        return 200
    except client.ApiException as e:
        return e.status
review = client.AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
result = {"user": review.status.user_info.username, "configmaps": status(core.list_namespaced_config_map),
          "secrets": status(core.list_namespaced_secret), "host": os.environ["KUBERNETES_SERVICE_HOST"]}
print(json.dumps(result), flush=True)
ok = result["configmaps"] == 200 and result["secrets"] == 403 and result["user"] == os.environ["EXPECTED_USER"]
sys.exit(0 if ok else 1)
"""


def test_service_account_token_authenticates_as_the_pod_and_rbac_applies(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "configmap-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ],
        namespace,
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rbac-check"},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "script",
                    "image": "devstack/python:3.11",
                    "command": ["python", "-c", RBAC_SCRIPT],
                    "env": [
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "EXPECTED_USER", "value": f"system:serviceaccount:{namespace}:reader"},
                    ],
                }
            ],
        },
    }
    cluster.apply(pod, namespace)
    finished = wait_for(
        lambda: cluster.get("pod", "rbac-check", namespace)["status"].get("phase") in ("Succeeded", "Failed"),
        60,
        message="the script pod finished",
    )
    assert finished
    status = cluster.get("pod", "rbac-check", namespace)["status"]
    uid = cluster.get("pod", "rbac-check", namespace)["metadata"]["uid"]
    log = _container_log(cluster, namespace, "rbac-check", uid, "script")
    assert status["phase"] == "Succeeded", log
    assert json.loads(log.strip().splitlines()[-1])["secrets"] == 403


def _container_log(cluster: Cluster, namespace: str, name: str, uid: str, container: str) -> str:
    """There is no kubelet log API here: the pod runner keeps logs under its state directory."""
    path = cluster.state_dir / "podrunner" / "pods" / f"{namespace}_{name}_{uid}" / "logs" / container / "0.log"
    return path.read_text() if path.exists() else f"(no log at {path})"
