"""docs/kind.md cannot run here (no Docker); what it applies from this repository must be valid all the same.

The chart with examples/kind/values.yaml and the release in examples/kind/ go
through the API server's validation and admission with ``--dry-run=server``
on devstack; kind-config.yaml and the files the page names are checked as far
as they can be without kind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from chart_support import CHART, helm

from devstack import build, scenario
from devstack.testing import Cluster

pytestmark = [pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]
KIND = REPO / "examples" / "kind"
PAGE = (REPO / "docs" / "kind.md").read_text()


def test_the_kind_cluster_runs_the_kubernetes_minor_devstack_builds() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    minor = ".".join(build.K8S_VERSION.split(".")[:2])
    for node in config["nodes"]:
        assert node["image"].startswith(f"kindest/node:{minor}."), node["image"]


def test_every_repository_file_the_page_uses_exists() -> None:
    named = set(re.findall(r"\b((?:examples|charts|docs)/[\w./-]*\w)", PAGE))
    named.add("kind-config.yaml")
    assert named, "the page names no file"
    missing = [name for name in named if not (REPO / name).exists()]
    assert missing == []


def test_the_chart_with_the_kind_values_is_accepted_by_the_api_server(cluster: Cluster, namespace: str) -> None:
    # A fresh namespace stands for "ml", which a shared devstack may not have (or may have for another test).
    scenario.install_crd(cluster)
    values = ["-f", str(KIND / "values.yaml"), "--set-json", f'watchNamespaces=["{namespace}"]']
    rendered = helm("template", "modelrelease", str(CHART), "-n", namespace, *values)
    assert rendered.returncode == 0, rendered.stderr
    # The PodMonitor and ServiceMonitor need kube-prometheus-stack's CRDs, which devstack does not serve.
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d and not d["apiVersion"].startswith("monitoring.")]
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs), check=False)
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d}
    assert {"PodMonitor", "ServiceMonitor"} <= kinds, "the kind values enable both monitors"


def test_the_kind_release_is_accepted_by_the_api_server(cluster: Cluster, namespace: str) -> None:
    scenario.install_crd(cluster)
    release = yaml.safe_load((KIND / "release.yaml").read_text())
    moved = {**release, "metadata": {**release["metadata"], "namespace": namespace}}
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(moved), check=False)
    assert result.returncode == 0, result.stderr
    values = yaml.safe_load((KIND / "values.yaml").read_text())
    assert release["metadata"]["namespace"] in values["watchNamespaces"]
    from modelrelease.policy import image_allowed

    assert image_allowed(release["spec"]["serving"]["image"], tuple(values["policy"]["allowedImages"]))
