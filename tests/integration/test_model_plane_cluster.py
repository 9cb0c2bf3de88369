"""The model plane on the devstack cluster: TF Serving pods, per-version Prometheus labels, accuracy per version.

One module-scoped set of Deployments (v1 with two replicas, v2, v3, and the
corrupt v4), each pinned to its version by a model config file from a
ConfigMap, exactly as the operator writes them; every test reads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack import models, prometheus
from devstack.testing import Cluster, fresh_namespace, wait_for
from devstack.traffic import TrafficConfig, running
from devstack.traffic.endpoints import EndpointSliceSource
from devstack.traffic.kube import resolver_for_service

pytestmark = pytest.mark.cluster

RELEASE = "digits"
IMAGE = "tensorflow/serving:2.18.0"
REPLICAS = {1: 2, 2: 1, 3: 1, 4: 1}
GRPC_PORT, REST_PORT = 8500, 8501
METRICS_PATH = "/monitoring/prometheus/metrics"


def model_config(version: int) -> str:
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{RELEASE}"\n    base_path: "/models/{RELEASE}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n}\n"
    )


def manifests(version: int) -> list[dict[str, Any]]:
    name = f"{RELEASE}-v{version}"
    labels = {
        "app.kubernetes.io/name": RELEASE,
        "modelrelease.io/release": RELEASE,
        "modelrelease.io/version": str(version),
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config", "labels": labels},
        "data": {
            "models.config": model_config(version),
            "monitoring.config": f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n',
        },
    }
    container = {
        "name": "serving",
        "image": IMAGE,
        "args": [
            f"--port={GRPC_PORT}",
            f"--rest_api_port={REST_PORT}",
            f"--model_name={RELEASE}",
            f"--model_base_path=/models/{RELEASE}",
            "--model_config_file=/etc/modelrelease/models.config",
            "--monitoring_config_file=/etc/modelrelease/monitoring.config",
            # TF Serving retries a failed load 5 times a minute apart; the corrupt v4 should fail now.
            "--max_num_load_retries=0",
        ],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "http", "containerPort": REST_PORT}],
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{RELEASE}", "port": REST_PORT},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
        "volumeMounts": [{"name": "config", "mountPath": "/etc/modelrelease"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": REPLICAS[version],
            "selector": {"matchLabels": {"modelrelease.io/release": RELEASE, "modelrelease.io/version": str(version)}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(REST_PORT),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                },
            },
        },
    }
    return [config_map, deployment, service(name, {"modelrelease.io/release": RELEASE, **version_selector(version)})]


def version_selector(version: int) -> dict[str, str]:
    return {"modelrelease.io/version": str(version)}


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
                {"name": "http", "port": REST_PORT, "targetPort": REST_PORT},
            ],
        },
    }


def pods(cluster: Cluster, namespace: str, version: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cluster.get(
        "pods", namespace=namespace, selector=f"modelrelease.io/version={version}"
    )
    return [pod for pod in found if not pod["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def rest_status(pod: dict[str, Any]) -> dict[str, Any] | None:
    """TF Serving's model status straight from the pod's REST port; None while it does not answer."""
    ip = pod.get("status", {}).get("podIP")
    if not ip:
        return None
    try:
        with httpx.Client(timeout=2, trust_env=False) as client:
            response = client.get(f"http://{ip}:{REST_PORT}/v1/models/{RELEASE}")
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def plane(cluster: Cluster) -> Iterator[tuple[Cluster, str, dict[str, float]]]:
    """The Deployments, Ready; yields the namespace and metrics.json accuracy per loadable version."""
    models.ensure_models()
    accuracy = {v: float(models.read_metrics(v)["accuracy"]) for v in (1, 2, 3)}  # type: ignore[arg-type]
    with fresh_namespace(cluster, "model-plane") as namespace:
        objects = [item for version in REPLICAS for item in manifests(version)]
        objects.append(service(RELEASE, {"modelrelease.io/release": RELEASE}))
        started = time.monotonic()
        cluster.apply(objects, namespace=namespace)
        for version in (1, 2, 3):
            wait_for(
                lambda version=version: (
                    len([p for p in pods(cluster, namespace, version) if is_ready(p)]) == REPLICAS[version]
                ),
                timeout=240,
                interval=1,
                message=f"v{version} pods Ready",
            )
        print(f"model plane: 4 pods of v1-v3 Ready {time.monotonic() - started:.1f} s after apply")
        yield cluster, namespace, accuracy


def test_pods_are_ready_only_once_their_model_is_available(plane: tuple[Cluster, str, dict[str, float]]) -> None:
    cluster, namespace, _ = plane
    for version in (1, 2, 3):
        for pod in pods(cluster, namespace, version):
            status = rest_status(pod)
            assert status is not None, f"{pod['metadata']['name']} is Ready but its REST API does not answer"
            states = {entry["version"]: entry["state"] for entry in status["model_version_status"]}
            assert states == {str(version): "AVAILABLE"}

    # The corrupt version: its server runs and reports the failed load, and the probe keeps it out of the Service.
    def v4_reports_its_failed_load() -> dict[str, Any] | None:
        (pod,) = pods(cluster, namespace, 4)
        status = rest_status(pod)
        states = [entry["state"] for entry in (status or {}).get("model_version_status") or []]
        return pod if states and states[0] in ("END", "AVAILABLE") else None

    broken = wait_for(v4_reports_its_failed_load, timeout=120, interval=1, message="v4 reporting its model status")
    (entry,) = rest_status(broken)["model_version_status"]  # type: ignore[index]
    assert entry["state"] == "END" and entry["status"]["error_code"] != "OK"
    assert not is_ready(pods(cluster, namespace, 4)[0])
    # What the data plane would route to: the Service's ready endpoints, without the broken pod.
    source = EndpointSliceSource(cluster.api_client(), namespace, GRPC_PORT)
    routed = {endpoint.host for endpoint in source.endpoints(RELEASE)}
    assert broken["status"].get("podIP") not in routed
    assert len(routed) == sum(REPLICAS[v] for v in (1, 2, 3))


def test_prometheus_sees_serving_request_counts_per_pod_with_version_and_release(
    plane: tuple[Cluster, str, dict[str, float]],
) -> None:
    cluster, namespace, _ = plane
    assert cluster.prometheus_url, "devstack started without Prometheus (run make setup)"
    url = cluster.prometheus_url
    resolver = resolver_for_service(cluster.kubeconfig, namespace, RELEASE, GRPC_PORT, router="replicas")
    expected = {
        (pod["metadata"]["name"], str(version)) for version in (1, 2, 3) for pod in pods(cluster, namespace, version)
    }
    selector = f'namespace="{namespace}",release="{RELEASE}"'
    config = TrafficConfig(rate=40, duration=60, seed=1)
    with running(config, resolver) as generator:
        started = time.monotonic()
        series = wait_for(
            lambda: (
                (
                    found := prometheus.query(
                        url, f"sum by (pod, version) (:tensorflow:serving:request_count{{{selector}}})"
                    )
                )
                and {(s["metric"]["pod"], s["metric"]["version"]) for s in found} == expected
                and found
            ),
            timeout=30,
            interval=0.5,
            message="request_count for every serving pod, labelled with its version, within 30 s",
        )
        seen_after = time.monotonic() - started
        answered = generator.stats.versions
    print(f"model plane: request_count of all {len(series)} pods in Prometheus {seen_after:.1f} s after traffic began")
    assert set(answered) == {"1", "2", "3"}
    # kube-proxy's split follows replicas: v1 has two of the four ready pods.
    assert answered["1"] > answered["2"] and answered["1"] > answered["3"]


def test_outcome_counter_gives_each_versions_held_out_accuracy(plane: tuple[Cluster, str, dict[str, float]]) -> None:
    cluster, namespace, expected = plane
    assert cluster.prometheus_url, "devstack started without Prometheus (run make setup)"
    url = cluster.prometheus_url
    inputs, labels = models.load_holdout()
    measured: dict[int, float] = {}
    for version in (1, 2, 3):
        resolver = resolver_for_service(cluster.kubeconfig, namespace, f"{RELEASE}-v{version}", router="replicas")
        job = f"accuracy-{namespace}-v{version}"
        config = TrafficConfig(rate=100, duration=60, count=len(labels), sequential=True)
        with running(
            config,
            resolver,
            inputs,
            labels,
            register_prometheus=cluster.state_dir,
            job=job,
            scraped_by=url,
        ) as generator:
            assert generator.wait(timeout=90)
            assert generator.stats.answered == len(labels), generator.stats.codes
            selector = f'job="{job}",version="{version}"'
            wait_for(
                lambda selector=selector: (
                    prometheus.query_value(url, f"sum(model_prediction_outcomes_total{{{selector}}})") == len(labels)
                ),
                timeout=20,
                message=f"all v{version} outcomes in Prometheus",
            )
            value = prometheus.query_value(
                url,
                f'sum(model_prediction_outcomes_total{{{selector},outcome="correct"}})'
                f" / sum(model_prediction_outcomes_total{{{selector}}})",
            )
        assert value is not None
        measured[version] = value
    print(
        "model plane: accuracy measured / metrics.json: "
        + json.dumps({v: (measured[v], expected[v]) for v in measured})
    )
    for version, value in measured.items():
        assert value == pytest.approx(expected[version], abs=0.02)
    assert measured[2] > measured[1] > measured[3] + 0.1


def test_cli_sends_through_the_service_and_leaves_no_prometheus_target_behind(
    plane: tuple[Cluster, str, dict[str, float]],
) -> None:
    cluster, namespace, _ = plane
    job = f"cli-{namespace}"
    argv = [
        sys.executable,
        "-m",
        "devstack.traffic",
        f"--kubeconfig={cluster.kubeconfig}",
        f"--namespace={namespace}",
        f"--service={RELEASE}",
        "--rate=50",
        "--duration=3",
        "--header=x-cohort=b",
        "--header-share=0.5",
        f"--register-prometheus={cluster.state_dir}",
        f"--job={job}",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["sent"] == 150
    assert summary["codes"] == {"OK": 150}
    assert set(summary["versions"]) <= {"1", "2", "3"}
    assert not list(prometheus.targets_dir(cluster.state_dir).glob(f"{job}-*.json"))
