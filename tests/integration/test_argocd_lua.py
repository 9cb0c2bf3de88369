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
