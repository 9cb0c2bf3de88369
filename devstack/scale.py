"""Many releases on kwok's fake nodes: the manifests, the fake model plane, and the counts a scale run reads.

Shared by the scale smoke (tests/e2e/test_scale_smoke.py) and ``make
bench-scale`` (devstack.bench_scale), so both measure the same things the
same way:

- ``scale_release``: a ModelRelease whose pods land on kwok nodes only
  (``podTemplate`` gives them kwok's node selector and toleration), with the
  model named after the release, so devstack.fake_serving's exporter gives
  every release its own per-version series;
- ``FakeServing``: devstack.fake_serving as a child process (answers gRPC at
  every fake pod address, exports the counters to Prometheus);
- ``audit_writes``: the writes the API server's audit log records in given
  namespaces since an offset.  The smoke uses it rather than the API
  server's ``apiserver_request_total``, which has no namespace or user label:
  under pytest-xdist other tests write to the same devstack at the same
  time, and only the audit log tells the scale test's writes apart;
- ``apiserver_requests``: ``apiserver_request_total`` by verb (the bench
  has the devstack to itself, so there the counter is the operator's);
- ``operator_requests``: the operator's own ``modelrelease_api_requests_total``.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import audit, kwok, processes
from devstack.testing import Cluster, wait_for

REPO = Path(__file__).resolve().parents[1]
METRIC_NAME = "model_prediction_outcomes_total"


def scale_release(name: str, namespace: str, version: int, stages: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A one-replica ModelRelease on kwok nodes, its model named after it (its own series in the exporter)."""
    return {
        "apiVersion": "modelrelease.io/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": name, "basePath": f"/models/{name}", "version": version},
            "serving": {
                "image": "tensorflow/serving:2.18.0",
                "replicas": 1,
                "podTemplate": {"nodeSelector": kwok.FAKE_NODE_SELECTOR, "tolerations": [kwok.FAKE_NODE_TOLERATION]},
            },
            "stages": stages,
            **spec,
        },
    }


def accuracy_analysis(interval: str = "10s") -> dict[str, Any]:
    """One ratio metric on the exporter's counters (correct / all), judged on its own (no baseline)."""
    selector = 'model="{{model}}",version="{{version}}"'
    return {
        "interval": interval,
        "metrics": [
            {
                "name": "accuracy",
                "ratio": {
                    "success": f'sum(increase({METRIC_NAME}{{{selector},outcome="correct"}}[{{{{interval}}}}]))',
                    "total": f"sum(increase({METRIC_NAME}{{{selector}}}[{{{{interval}}}}]))",
                },
                "min": 0.9,
            }
        ],
    }


def apply_all(cluster: Cluster, manifests: Iterable[dict[str, Any]], chunk: int = 100) -> None:
    """``kubectl apply`` in chunks (one List per chunk: one process per hundred objects, not per object)."""
    items = list(manifests)
    for start in range(0, len(items), chunk):
        body = {"apiVersion": "v1", "kind": "List", "items": items[start : start + chunk]}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(body), timeout=300)


def set_versions(cluster: Cluster, namespace: str, names: Iterable[str], version: int) -> None:
    """Change ``spec.model.version`` of many releases, one merge patch each through one API client (no fork each)."""
    from kubernetes import client as sync_client

    api = sync_client.CustomObjectsApi(cluster.api_client())
    body = {"spec": {"model": {"version": version}}}
    for name in names:
        api.patch_namespaced_custom_object("modelrelease.io", "v1alpha1", namespace, "modelreleases", name, body)


def release_statuses(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    listed = cluster.kubectl("get", "modelreleases", "-n", namespace, "-o", "json", timeout=120)
    return {item["metadata"]["name"]: item.get("status") or {} for item in json.loads(listed.stdout)["items"]}


def deployments(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    listed = cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json", timeout=120)
    return {item["metadata"]["name"]: item for item in json.loads(listed.stdout)["items"]}


def wait_phases(
    cluster: Cluster, namespace: str, expected: dict[str, tuple[str, int]], timeout: float, settled: bool = False
) -> dict[str, dict[str, Any]]:
    """Wait until every release named in ``expected`` has (phase, stableVersion); say which did not.

    ``settled`` also waits for every retired version to be scaled down (no ``retiringVersion`` left).
    """
    seen: dict[str, dict[str, Any]] = {}

    def state(name: str) -> tuple[Any, ...]:
        status = seen.get(name, {})
        found: tuple[Any, ...] = (status.get("phase"), status.get("stableVersion"))
        return (*found, status.get("retiringVersion")) if settled else found

    def want(name: str) -> tuple[Any, ...]:
        return (*expected[name], None) if settled else expected[name]

    def all_there() -> bool:
        seen.clear()
        seen.update(release_statuses(cluster, namespace))
        return all(state(name) == want(name) for name in expected)

    def late() -> str:
        wrong = {name: state(name) for name in expected if state(name) != want(name)}
        sample = dict(list(sorted(wrong.items()))[:10])
        return f"{len(wrong)} of {len(expected)} releases not at their expected phase, e.g. {sample}"

    try:
        wait_for(all_there, timeout, interval=2.0, message="releases at their expected phase")
    except Exception as error:
        raise AssertionError(late()) from error
    return seen


def wait_deployments_settled(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Wait until every Deployment in ``namespace`` is at its spec: nothing left for controllers to report."""

    def settled() -> bool:
        for item in deployments(cluster, namespace).values():
            spec, status = item.get("spec") or {}, item.get("status") or {}
            wanted = int(spec.get("replicas", 1))
            if int(status.get("observedGeneration") or 0) < int(item["metadata"].get("generation") or 0):
                return False
            counts = (status.get("replicas"), status.get("readyReplicas"), status.get("updatedReplicas"))
            if any(int(count or 0) != wanted for count in counts):
                return False
        return True

    wait_for(settled, timeout, interval=2.0, message=f"every Deployment in {namespace} at its spec")


@dataclass
class FakeServing:
    """devstack.fake_serving as a child process; ``with FakeServing(...) as fake:``."""

    cluster: Cluster
    namespace_prefix: str
    log_path: Path
    rate: float = 20.0
    exporter_port: int = field(default_factory=processes.free_port)
    pid: int | None = None

    def __enter__(self) -> FakeServing:
        argv = [
            sys.executable,
            "-m",
            "devstack.fake_serving",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--state-dir={self.cluster.state_dir}",
            f"--namespace-prefix={self.namespace_prefix}",
            f"--exporter-port={self.exporter_port}",
            f"--rate={self.rate:g}",
        ]
        env = {**self.cluster.env, "PYTHONPATH": f"{REPO}:{REPO / 'operator'}"}
        self.pid = processes.start(argv, self.log_path, env=env, cwd=REPO).pid
        wait_for(lambda: self.status() is not None, 60, interval=0.3, message="fake serving /status")
        return self

    def __exit__(self, *_: object) -> None:
        if self.pid is not None:
            processes.stop(self.pid)

    def status(self) -> dict[str, Any] | None:
        if self.pid is not None and not processes.alive(self.pid):
            raise RuntimeError(f"fake serving exited; see {self.log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.exporter_port}/status", timeout=5) as response:
                found: dict[str, Any] = json.loads(response.read())
                return found
        except OSError:
            return None


@dataclass(frozen=True)
class Writes:
    count: int
    by_resource: dict[str, int]
    sample: list[str]


def audit_offset(cluster: Cluster) -> int:
    return audit.size(audit.log_path(cluster.state_dir / "logs"))


def audit_writes(cluster: Cluster, offset: int, namespaces: Iterable[str]) -> Writes:
    """Writes the audit log recorded in ``namespaces`` from ``offset`` on (events and Leases left out)."""
    wanted = set(namespaces)
    entries, _ = audit.read(audit.log_path(cluster.state_dir / "logs"), offset)
    writes = [e for e in entries if e.is_write and e.namespace in wanted and e.resource not in ("events", "leases")]
    by_resource = Counter(e.resource for e in writes)
    return Writes(len(writes), dict(by_resource), [e.describe() for e in writes[:10]])


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def samples(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``metric`` in a Prometheus text exposition, with its labels."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != metric:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        found.append((labels, float(match["value"])))
    return found


def operator_requests(metrics_text: str) -> dict[str, float]:
    """The operator's own request counter by method (``modelrelease_api_requests_total``)."""
    return {labels["method"]: value for labels, value in samples(metrics_text, "modelrelease_api_requests_total")}


def apiserver_requests(cluster: Cluster) -> dict[str, float]:
    """``apiserver_request_total`` summed by verb, read from the API server's /metrics."""
    raw = cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    by_verb: dict[str, float] = {}
    for labels, value in samples(raw, "apiserver_request_total"):
        verb = labels.get("verb", "")
        by_verb[verb] = by_verb.get(verb, 0.0) + value
    return by_verb


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in sorted(set(after) | set(before))}
