"""The Argo CD health check and resource actions, run by gopher-lua (the interpreter Argo CD embeds).

The cases are Argo CD's own test files in its ``resource_customizations``
layout (``health_test.yaml``, ``actions/action_test.yaml``), read the way
Argo CD's test runner reads them, so the directory can be proposed upstream
as it is.  The harness (devstack/luaharness) is built by ``make setup``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import build

REPO = Path(__file__).resolve().parents[2]
CUSTOMIZATION = REPO / "resource_customizations" / "modelrelease.io" / "ModelRelease"
ACTIONS = CUSTOMIZATION / "actions"


def run_lua(script: Path, obj: dict[str, Any]) -> Any:
    harness = build.lua_harness()
    assert harness.exists(), f"{harness} is missing: run `make setup` (devstack.build.build_lua_harness)"
    result = subprocess.run(
        [str(harness), str(script)], input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"{script.name}: {result.stderr}"
    return json.loads(result.stdout)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def empty_is_none(value: Any) -> Any:
    """Lua has one table type: an empty list and an empty map read back the same, as in Argo CD."""
    if isinstance(value, dict):
        return {k: empty_is_none(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [empty_is_none(v) for v in value] or None
    return value


HEALTH_CASES = load(CUSTOMIZATION / "health_test.yaml")["tests"]
ACTION_TESTS = load(ACTIONS / "action_test.yaml")


@pytest.mark.parametrize("case", HEALTH_CASES, ids=[Path(c["inputPath"]).stem for c in HEALTH_CASES])
def test_health_check_gives_argo_cd_the_status_and_message_of_each_phase(case: dict[str, Any]) -> None:
    obj = load(CUSTOMIZATION / case["inputPath"])
    assert run_lua(CUSTOMIZATION / "health.lua", obj) == case["healthStatus"]


def test_every_phase_of_the_api_has_a_health_case() -> None:
    from modelrelease.api.status import Phase

    covered = {load(CUSTOMIZATION / c["inputPath"]).get("status", {}).get("phase") for c in HEALTH_CASES}
    assert {phase.value for phase in Phase} - {"Initializing"} <= covered


@pytest.mark.parametrize(
    "case", ACTION_TESTS["discoveryTests"], ids=[Path(c["inputPath"]).stem for c in ACTION_TESTS["discoveryTests"]]
)
def test_action_discovery_offers_only_the_requests_the_operator_would_act_on(case: dict[str, Any]) -> None:
    found = run_lua(ACTIONS / "discovery.lua", load(ACTIONS / case["inputPath"]))
    expected = {entry["name"]: {"disabled": entry["disabled"]} for entry in case["result"]}
    assert found == expected


@pytest.mark.parametrize("case", ACTION_TESTS["actionTests"], ids=[c["action"] for c in ACTION_TESTS["actionTests"]])
def test_each_action_writes_the_request_annotation_and_leaves_spec_alone(case: dict[str, Any]) -> None:
    before = load(ACTIONS / case["inputPath"])
    after = run_lua(ACTIONS / case["action"] / "action.lua", before)
    assert empty_is_none(after) == empty_is_none(load(ACTIONS / case["expectedOutputPath"]))
    assert after["spec"] == before["spec"], "an action that edits spec would show as drift in Argo CD"


def test_approve_without_a_stage_fails_with_a_message() -> None:
    obj = load(ACTIONS / "testdata" / "succeeded.yaml")
    result = subprocess.run(
        [str(build.lua_harness()), str(ACTIONS / "approve" / "action.lua")],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "no stage to approve" in result.stderr


def test_every_action_directory_is_offered_by_discovery() -> None:
    offered = set(run_lua(ACTIONS / "discovery.lua", load(ACTIONS / "testdata" / "progressing.yaml")))
    directories = {p.name for p in ACTIONS.iterdir() if (p / "action.lua").exists()}
    assert offered == directories == {"approve", "promote", "abort", "retry"}


EXAMPLES = REPO / "examples" / "argocd"


def test_argocd_cm_example_installs_exactly_the_tested_lua() -> None:
    from argocd_support import expected_config_map, render

    committed = load(EXAMPLES / "argocd-cm.yaml")
    assert committed == expected_config_map(), "examples/argocd/argocd-cm.yaml is stale: python tests/argocd_support.py"
    assert (EXAMPLES / "argocd-cm.yaml").read_text() == render()


def test_the_release_application_ignores_manual_requests_and_router_fields_the_operator_sets() -> None:
    app = load(EXAMPLES / "release-application.yaml")
    assert app["kind"] == "Application" and app["spec"]["source"]["path"] == "examples/argocd/release"
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    ignored = {(d["group"], d["kind"]): d for d in app["spec"]["ignoreDifferences"]}
    paths = ignored[("modelrelease.io", "ModelRelease")]["jqPathExpressions"]
    from modelrelease.observe import REQUEST_KINDS, request_annotation

    assert paths == [f'.metadata.annotations["{request_annotation(kind)}"]' for kind in REQUEST_KINDS]
    from modelrelease.kube.client import FIELD_MANAGER

    for router in (("gateway.networking.k8s.io", "HTTPRoute"), ("networking.istio.io", "VirtualService")):
        assert ignored[router]["managedFieldsManagers"] == [FIELD_MANAGER]
    released = list((REPO / app["spec"]["source"]["path"]).glob("*.yaml"))
    assert [load(p)["kind"] for p in released] == ["ModelRelease"]


def test_the_operator_application_installs_this_chart() -> None:
    app = load(EXAMPLES / "operator-application.yaml")
    assert app["spec"]["source"]["path"] == "charts/modelrelease"
    values = app["spec"]["source"]["helm"]["valuesObject"]
    chart_values = load(REPO / "charts" / "modelrelease" / "values.yaml")
    assert set(values) <= set(chart_values)
