"""What ``get``, ``status`` and ``watch`` show, computed from plain API objects (no cluster)."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from modelrelease.cli import main
from modelrelease.cli.cluster import Snapshot
from modelrelease.cli.render import render_plain, status_blocks
from modelrelease.cli.view import exit_code_of, is_finished, release_row, status_data
from modelrelease.cli.watching import _LogLines, summary_line

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)

RELEASE: dict[str, Any] = {
    "apiVersion": "modelrelease.io/v1alpha1",
    "kind": "ModelRelease",
    "metadata": {"name": "digits", "namespace": "ml", "generation": 3, "creationTimestamp": "2026-12-02T11:00:00Z"},
    "spec": {
        "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
        "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 3},
        "stages": [
            {"name": "canary", "weight": 25, "duration": "4m"},
            {"name": "ab", "weight": 50, "approval": True},
            {"name": "full", "weight": 100},
        ],
        "analysis": {"interval": "30s", "minChecks": 3},
        "holdAt": "ab",
    },
    "status": {
        "phase": "Progressing",
        "stableVersion": 1,
        "candidateVersion": 2,
        "observedGeneration": 3,
        "message": "v2 stage canary (1/3): 1/3 passing checks",
        "stage": {
            "index": 0,
            "name": "canary",
            "weight": 25,
            "actualWeight": 25,
            "enteredAt": "2026-12-02T11:58:00Z",
            "reachedAt": "2026-12-02T11:59:00Z",
        },
        "analysis": {
            "checks": 2,
            "passed": 1,
            "failures": 1,
            "inconclusive": 0,
            "metrics": [
                {"name": "accuracy", "candidate": 0.96, "baseline": 0.95, "verdict": "pass", "samples": 412},
                {"name": "error-rate", "candidate": 0.02, "verdict": "fail", "samples": 400, "message": "above max"},
            ],
        },
        "history": [
            {"version": 1, "outcome": "Promoted", "reason": "InitialVersion", "at": "2026-12-02T11:00:10Z"},
            {"version": 2, "outcome": "Started", "reason": "VersionChanged", "at": "2026-12-02T11:57:00Z"},
        ],
    },
}


def _deployment(version: int, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"digits-v{version}",
            "labels": {"modelrelease.io/release": "digits", "modelrelease.io/version": str(version)},
        },
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready},
    }


def _pod(name: str, version: int, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"modelrelease.io/version": str(version)}},
        "status": {"podIP": "127.0.10.1", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def snapshot(release: dict[str, Any] | None = None) -> Snapshot:
    return Snapshot(
        release=release or copy.deepcopy(RELEASE),
        deployments=[_deployment(1, 3, 3), _deployment(2, 1, 0)],
        pods=[_pod("digits-v1-a", 1, True), _pod("digits-v2-b", 2, False)],
        events=[
            {
                "metadata": {"creationTimestamp": "2026-12-02T11:59:30Z"},
                "lastTimestamp": "2026-12-02T11:59:30Z",
                "type": "Warning",
                "reason": "CheckFailed",
                "message": "v2 stage canary: error-rate above max",
                "count": 2,
            }
        ],
        model_states={"digits-v1-a": "AVAILABLE", "digits-v2-b": "LOADING"},
    )


def test_status_shows_versions_pods_and_the_model_state_each_pod_reports() -> None:
    data = status_data(snapshot(), NOW)
    assert [(v["version"], v["role"], v["ready"], v["desired"]) for v in data.versions] == [
        (2, "candidate", 0, 1),
        (1, "stable", 3, 3),
    ]
    assert data.versions[0]["pods"] == [{"name": "digits-v2-b", "ip": "127.0.10.1", "ready": False, "model": "LOADING"}]


def test_status_times_the_stage_from_its_weight_and_counts_checks_against_those_needed() -> None:
    stage = status_data(snapshot(), NOW).stage
    assert stage is not None
    assert (stage["elapsedSeconds"], stage["durationSeconds"]) == (60, 240)
    assert (stage["checksPassed"], stage["checksNeeded"]) == (1, 3)
    assert (stage["weight"], stage["actualWeight"]) == (25, 25)
    text = render_plain(status_blocks(status_data(snapshot(), NOW)))
    assert "[#####---------------] 60s of 4m" in text
    assert "1 passed of 3 needed (2 run: 1 failed, 0 inconclusive)" in text
    assert "25% desired, 25% actual" in text


def test_status_names_the_approval_and_hold_a_stage_waits_for() -> None:
    release = copy.deepcopy(RELEASE)
    release["status"]["stage"] = {"index": 1, "name": "ab", "weight": 50, "actualWeight": 50}
    release["status"]["pausedByRequest"] = True
    stage = status_data(snapshot(release), NOW).stage
    assert stage is not None
    assert stage["waitingFor"][:3] == ["pause request (modelrelease resume)", "approval of stage ab", "holdAt ab"]


def test_status_shows_each_metric_candidate_against_stable_with_counts_verdict_and_reason() -> None:
    text = render_plain(status_blocks(status_data(snapshot(), NOW)))
    lines = text.splitlines()
    accuracy = next(line for line in lines if line.strip().startswith("accuracy"))
    assert accuracy.split() == ["accuracy", "0.96", "0.95", "412", "pass"]
    error = next(line for line in lines if line.strip().startswith("error-rate"))
    assert error.split()[1:] == ["0.02", "-", "400", "fail", "above", "max"]
    assert "VersionChanged" not in text  # history shows the message, the reason is in -o json
    assert "Started" in text and "CheckFailed" in text and "(x2)" in text


def test_status_as_json_carries_the_same_facts_as_the_table() -> None:
    data = status_data(snapshot(), NOW).as_dict()
    assert json.loads(json.dumps(data))["stage"]["checksNeeded"] == 3
    assert data["metrics"][1] == {
        "name": "error-rate",
        "candidate": 0.02,
        "stable": None,
        "samples": 400,
        "verdict": "fail",
        "reason": "above max",
    }
    assert data["history"][-1]["reason"] == "VersionChanged"


def test_get_row_shows_weight_desired_and_actual_and_age() -> None:
    row = release_row(RELEASE, NOW)
    assert row == {
        "namespace": "ml",
        "name": "digits",
        "phase": "Progressing",
        "stable": 1,
        "candidate": 2,
        "stage": "canary",
        "weight": "25/25",
        "age": "60m",
    }


@pytest.mark.parametrize(
    ("phase", "observed", "finished", "code"),
    [("Succeeded", 3, True, 0), ("RolledBack", 3, True, 1), ("Failed", 3, True, 1), ("Succeeded", 2, False, 0)],
)
def test_a_rollout_is_finished_only_for_the_spec_the_operator_has_seen(
    phase: str, observed: int, finished: bool, code: int
) -> None:
    release = copy.deepcopy(RELEASE)
    release["status"].update(phase=phase, observedGeneration=observed)
    assert is_finished(release) is finished
    assert exit_code_of(release) == code


def test_piped_watch_prints_one_line_per_change_and_each_new_history_entry() -> None:
    out = io.StringIO()
    lines = _LogLines(out)
    lines.show(snapshot(), NOW)
    lines.show(snapshot(), NOW)
    later = copy.deepcopy(RELEASE)
    later["status"]["history"].append({"version": 2, "outcome": "StageCompleted", "stage": "canary", "message": "ok"})
    later["status"]["stage"].update(index=1, name="ab", weight=50)
    lines.show(snapshot(later), NOW)
    printed = out.getvalue().splitlines()
    assert len(printed) == 3, printed
    assert printed[0].endswith(
        "Progressing v1 -> v2 stage canary (1/3) weight 25/25 checks 1/3 | " + RELEASE["status"]["message"]
    )
    assert printed[1] == "12:00:00 history: v2 StageCompleted canary: ok"
    assert "stage ab (2/3) weight 50/25" in printed[2]
    assert summary_line(status_data(snapshot(later), NOW), NOW).startswith("Progressing")


def test_version_prints_as_text_json_and_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("modelrelease 0.1.0 (ModelRelease modelrelease.io/v1alpha1)")
    assert main(["version", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["api"] == "modelrelease.io/v1alpha1"
    assert main(["version", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["version"] == "0.1.0"


def test_completion_script_calls_back_with_the_completion_variable(capsys: pytest.CaptureFixture[str]) -> None:
    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == 0
        assert "_MODELRELEASE_COMPLETE" in capsys.readouterr().out
    assert main(["completion", "tcsh"]) == 2


def test_shell_completion_completes_command_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_MODELRELEASE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "modelrelease wa")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert main([]) == 0
    assert capsys.readouterr().out.split() == ["watch"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_tables_in_colour_unless_no_color_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrelease.cli.render import print_blocks

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = _Terminal()
    print_blocks(status_blocks(status_data(snapshot(), NOW), fancy=True), coloured)
    assert "\x1b[32m" in coloured.getvalue() and "Current stage" in coloured.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR")
    plain_colours = _Terminal()
    print_blocks(status_blocks(status_data(snapshot(), NOW), fancy=True), plain_colours)
    assert "\x1b[32m" not in plain_colours.getvalue() and "Current stage" in plain_colours.getvalue()
    piped = io.StringIO()
    print_blocks(status_blocks(status_data(snapshot(), NOW)), piped)
    assert "\x1b[" not in piped.getvalue()
