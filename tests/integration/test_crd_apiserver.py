"""The generated CRD on a real API server: accepted with every CEL rule, and refusing bad manifests.

Each refusal is checked twice: the API server's message names the field (what
a user sees at ``kubectl apply``), and the operator's pydantic models refuse
the same manifest at the same field, so the two validators cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.testing import Cluster, wait_for
from modelrelease.api import InvalidRelease, ModelReleaseSpec, parse_release
from modelrelease.api.crd import CRD_FILENAME, CRD_NAME, crd_manifest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "digits"


def _minimal() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    return manifest


def _merged(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merged(base.get(key), value)
        return out
    return copy.deepcopy(patch)


def _with_spec(**patch: Any) -> dict[str, Any]:
    manifest = _minimal()
    manifest["spec"] = _merged(manifest["spec"], patch)
    return manifest


def _with_metric(metric: dict[str, Any]) -> dict[str, Any]:
    return _with_spec(analysis={"metrics": [metric]})


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> dict[str, Any]:
    """The CRD as installed, once the API server serves the kind."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds" / CRD_FILENAME))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    wait_for(
        lambda: cluster.kubectl("get", "modelreleases", "-A", check=False).returncode == 0,
        30,
        message="the modelreleases resource in discovery",
    )
    installed: dict[str, Any] = cluster.get("crd", CRD_NAME)
    return installed


def _apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)


def test_api_server_accepts_the_crd_with_every_cel_rule(crd: dict[str, Any]) -> None:
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    generated = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    installed = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert json.dumps(installed, sort_keys=True).count('"rule"') == json.dumps(generated).count('"rule"')


@pytest.mark.parametrize("example", ["minimal.yaml", "full.yaml"])
def test_api_server_accepts_each_example_as_the_operator_reads_it(
    cluster: Cluster, namespace: str, crd: dict[str, Any], example: str
) -> None:
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    result = _apply(cluster, namespace, manifest)
    assert result.returncode == 0, result.stderr
    stored = cluster.get("modelrelease", manifest["metadata"]["name"], namespace=namespace)
    assert parse_release(stored).spec == parse_release(manifest).spec


def test_api_server_defaults_the_smallest_manifest_exactly_like_the_models(
    cluster: Cluster, namespace: str, crd: dict[str, Any]
) -> None:
    manifest = _minimal()
    assert _apply(cluster, namespace, manifest).returncode == 0
    stored = cluster.get("modelrelease", "digits", namespace=namespace)
    expected = ModelReleaseSpec.model_validate(manifest["spec"]).model_dump(by_alias=True, exclude_none=True)
    assert stored["spec"] == expected


def test_printer_columns_show_phase_versions_stage_and_actual_weight(
    cluster: Cluster, namespace: str, crd: dict[str, Any]
) -> None:
    assert _apply(cluster, namespace, _minimal()).returncode == 0
    status = {
        "phase": "Progressing",
        "stableVersion": 1,
        "candidateVersion": 2,
        "stage": {"index": 1, "name": "canary-10", "weight": 10, "actualWeight": 9},
    }
    cluster.kubectl(
        "patch", "mr", "digits", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    table = cluster.kubectl("get", "mrel", "digits", "-n", namespace).stdout.split("\n")
    assert table[0].split() == ["NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
    assert table[1].split()[:6] == ["digits", "Progressing", "1", "2", "canary-10", "9"]


# (id, manifest, the field the API server must name, words of what is allowed)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("version-zero", _with_spec(model={"version": 0}), "spec.model.version", "greater than or equal to 1"),
    ("no-image", _with_spec(serving={"image": None}), "spec.serving.image", "Required value"),
    ("relative-base-path", _with_spec(model={"basePath": "models/digits"}), "spec.model.basePath", "should match"),
    (
        "base-path-with-quote",
        _with_spec(model={"basePath": '/x"}config{name:"evil"base_path:"/tmp/evil'}),
        "spec.model.basePath",
        "should match",
    ),
    (
        "base-path-with-newline",
        _with_spec(model={"basePath": "/models/digits\nx"}),
        "spec.model.basePath",
        "should match",
    ),
    (
        "base-path-with-backslash",
        _with_spec(model={"basePath": "/models\\digits"}),
        "spec.model.basePath",
        "should match",
    ),
    ("base-path-with-del", _with_spec(model={"basePath": "/models/digits\x7f"}), "spec.model.basePath", "should match"),
    ("model-name-with-quote", _with_spec(model={"name": 'digits"'}), "spec.model.name", "should match"),
    ("typo-field", _with_spec(stage=[]), "spec.stage", "unknown field"),
    ("bad-release-name", _merged(_minimal(), {"metadata": {"name": "x" * 51}}), "metadata.name", "at most 50"),
    ("weight-over-100", _with_spec(stages=[{"name": "all", "weight": 150}]), "spec.stages[0].weight", "100"),
    (
        "duplicate-stage-names",
        _with_spec(stages=[{"name": "canary", "weight": 10}, {"name": "canary", "weight": 20}]),
        "spec.stages",
        "stage names must be unique",
    ),
    (
        "decreasing-weights",
        _with_spec(stages=[{"name": "a", "weight": 50}, {"name": "b", "weight": 10}]),
        "spec.stages",
        "weights must not decrease",
    ),
    (
        "two-kinds-in-a-stage",
        _with_spec(stages=[{"name": "a", "weight": 10, "mirror": 100}]),
        "spec.stages[0]",
        "exactly one of smoke, mirror or weight",
    ),
    (
        "match-on-mirror-stage",
        _with_spec(stages=[{"name": "a", "mirror": 50, "match": [{"headers": {"x-cohort": "b"}}]}]),
        "spec.stages[0].match",
        "only allowed on a weight stage",
    ),
    (
        "shadow-with-replicas-router",
        _with_spec(stages=[{"name": "shadow", "mirror": 100}, {"name": "full", "weight": 100}]),
        "spec.stages",
        "cannot copy requests: use traffic.router gatewayApi or istio",
    ),
    (
        "cohort-with-replicas-router",
        _with_spec(stages=[{"name": "ab", "weight": 50, "match": [{"headers": {"x-cohort": "b"}}]}]),
        "spec.stages",
        "cannot look at headers: use traffic.router gatewayApi or istio",
    ),
    (
        "smoke-after-traffic",
        _with_spec(stages=[{"name": "a", "weight": 10}, {"name": "s", "smoke": {}}]),
        "spec.stages",
        "smoke first, then mirror, then weight",
    ),
    (
        "stage-name-not-dns-label",
        _with_spec(stages=[{"name": "Canary_1", "weight": 10}]),
        "spec.stages[0].name",
        "should match",
    ),
    (
        "bad-header-name",
        _with_spec(stages=[{"name": "ab", "weight": 10, "match": [{"headers": {"x cohort": "b"}}]}]),
        "spec.stages[0].match[0].headers",
        "HTTP header names",
    ),
    ("hold-at-unknown-stage", _with_spec(holdAt="canary-99"), "spec.holdAt", "name of one of the stages"),
    (
        "template-and-query",
        _with_metric({"name": "m", "template": "accuracy", "query": "up", "min": 0.9}),
        "spec.analysis.metrics[0]",
        "exactly one of template, query or ratio",
    ),
    (
        "unknown-template",
        _with_metric({"name": "m", "template": "accuracy-v2", "min": 0.9}),
        "spec.analysis.metrics[0].template",
        "supported values",
    ),
    (
        "unknown-placeholder-in-query",
        _with_metric({"name": "m", "query": 'sum(up{pod="{{pod}}"})', "min": 1}),
        "spec.analysis.metrics[0].query",
        "only the placeholders",
    ),
    (
        "unknown-placeholder-in-ratio",
        _with_metric({"name": "m", "ratio": {"success": "sum(ok)", "total": "sum(all{x='{{ model }}'})"}, "min": 1}),
        "spec.analysis.metrics[0].ratio.total",
        "only the placeholders",
    ),
    (
        "metric-without-threshold",
        _with_metric({"name": "m", "template": "mae"}),
        "spec.analysis.metrics[0]",
        "without a threshold",
    ),
    (
        "min-above-max",
        _with_metric({"name": "m", "template": "accuracy", "min": 0.9, "max": 0.5}),
        "spec.analysis.metrics[0].min",
        "must not be greater than max",
    ),
    (
        "precision-without-positive-class",
        _with_metric({"name": "m", "template": "precision", "min": 0.9}),
        "spec.analysis.metrics[0].positiveClass",
        "required",
    ),
    (
        "empty-compare-to-baseline",
        _with_metric({"name": "m", "template": "accuracy", "compareToBaseline": {}}),
        "spec.analysis.metrics[0].compareToBaseline",
        "set maxDrop, maxIncrease or both",
    ),
    (
        "duplicate-metric-names",
        _with_spec(
            analysis={
                "metrics": [
                    {"name": "m", "template": "accuracy", "min": 0.9},
                    {"name": "m", "template": "mae", "max": 0.1},
                ]
            }
        ),
        "spec.analysis.metrics",
        "metric names must be unique",
    ),
    ("failure-limit-zero", _with_spec(analysis={"failureLimit": 0}), "spec.analysis.failureLimit", "1"),
    ("interval-below-1s", _with_spec(analysis={"interval": "500ms"}), "spec.analysis.interval", "at least 1s"),
    ("interval-not-a-duration", _with_spec(analysis={"interval": "5 minutes"}), "spec.analysis.interval", "match"),
    (
        "istio-router-without-block",
        _with_spec(traffic={"router": "istio"}),
        "spec.traffic.istio",
        "required when router is istio",
    ),
    (
        "gateway-block-for-replicas-router",
        _with_spec(traffic={"gatewayApi": {"httpRoute": "digits"}}),
        "spec.traffic.gatewayApi",
        "only allowed when router is gatewayApi",
    ),
    (
        "managed-flag-in-args",
        _with_spec(serving={"args": ["--port=9000"]}),
        "spec.serving.args",
        "flags the operator manages",
    ),
]


def test_the_catalogue_has_at_least_fifteen_distinct_refusals() -> None:
    assert len({case[0] for case in INVALID}) == len(INVALID) >= 15
    assert len({json.dumps(case[1], sort_keys=True) for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("manifest", "field", "allowed"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_api_server_refuses_invalid_manifest_naming_the_field(
    cluster: Cluster, namespace: str, crd: dict[str, Any], manifest: dict[str, Any], field: str, allowed: str
) -> None:
    result = _apply(cluster, namespace, manifest)
    assert result.returncode != 0, f"accepted: {json.dumps(manifest)}"
    assert field in result.stderr, result.stderr
    assert allowed in result.stderr, result.stderr
    assert "evaluating rule" not in result.stderr, f"a CEL rule failed to evaluate: {result.stderr}"
    with pytest.raises(InvalidRelease) as refused:
        parse_release(manifest)
    assert any(line.startswith(field) for line in refused.value.problems), refused.value.problems


# Characters around the edges of the basePath rule: the API server (Go's RE2)
# and the operator (Python's re) must read the pattern the same way.
BASE_PATHS = [
    "/models/digits",
    "gs://bucket/models/digits",
    "/modèles/数字",
    "/models/it's+(1)@x,y=z",
    "/models/\u00a0nbsp",
    "/models/\u2028line-separator",
    "/models/\u0085next-line",
    "/models/\u009fc1",
    '/models/"quoted"',
    "/models\\digits",
    "/models/\x01",
    "/models/\x7f",
    "/models/ space",
    "/models/\ttab",
    "models/relative",
]


def test_api_server_and_operator_agree_on_every_base_path(
    cluster: Cluster, namespace: str, crd: dict[str, Any]
) -> None:
    disagreements = []
    for path in BASE_PATHS:
        manifest = _with_spec(model={"basePath": path})
        dry_run = cluster.kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False
        )
        try:
            parse_release(manifest)
            operator_accepts = True
        except InvalidRelease:
            operator_accepts = False
        if (dry_run.returncode == 0) != operator_accepts:
            disagreements.append((path, dry_run.returncode == 0, operator_accepts, dry_run.stderr.strip()))
    assert disagreements == [], "\n".join(map(repr, disagreements))
