"""tensorflow/serving pods on the pod runner run the TF-Serving-compatible model server on their own IPs."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from typing import Any

import pytest

from devstack import cache_root
from devstack.testing import Cluster, wait_for

pytestmark = pytest.mark.cluster


def _model_status(ip: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{ip}:8501/v1/models/digits", timeout=2) as response:
            return dict(json.loads(response.read()))
    except OSError:
        return None


@pytest.mark.skipif(importlib.util.find_spec("devstack.modelserver") is None, reason="the model server has not landed")
@pytest.mark.skipif(not (cache_root() / "models" / "digits").is_dir(), reason="no SavedModels: run `make setup`")
def test_tf_serving_deployment_serves_the_model_from_each_pod_ip(cluster: Cluster, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "digits"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "digits"}},
            "template": {
                "metadata": {"labels": {"app": "digits"}},
                "spec": {
                    "containers": [
                        {
                            "name": "serving",
                            "image": "tensorflow/serving:2.18.0",
                            "args": ["--model_name=digits", "--model_base_path=/models/digits"],
                            "ports": [{"name": "grpc", "containerPort": 8500}, {"name": "http", "containerPort": 8501}],
                            "readinessProbe": {
                                "httpGet": {"path": "/v1/models/digits", "port": "http"},
                                "periodSeconds": 1,
                            },
                        }
                    ]
                },
            },
        },
    }
    cluster.apply(deployment, namespace)

    def all_ready() -> list[dict[str, Any]] | None:
        pods = cluster.get("pods", namespace=namespace, selector="app=digits")
        ready = [
            p
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
        ]
        return ready if len(ready) == 2 else None

    pods = wait_for(all_ready, 120, interval=0.5, message="2 tensorflow/serving pods Ready")
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2
    for ip in ips:
        status = _model_status(ip)
        assert status is not None
        states = [v["state"] for v in status["model_version_status"]]
        assert "AVAILABLE" in states
    cluster.kubectl("delete", "deployment/digits", "-n", namespace, "--wait=true")
    wait_for(lambda: not cluster.get("pods", namespace=namespace, selector="app=digits"), 60, message="pods removed")
