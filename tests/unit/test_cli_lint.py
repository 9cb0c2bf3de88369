"""``modelrelease lint`` refuses offline every manifest the API server refuses, naming the field.

The cases are the integration tests' own: every manifest test_crd_apiserver
shows the API server refusing (lint must refuse it at the same field), and
the fuzz probes and examples of test_api_fuzz, whose integration test proves
the API server and ``parse_release`` agree on each (lint must agree with
``parse_release`` on each, so it agrees with the API server).
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from modelrelease.api import InvalidRelease, parse_release
from modelrelease.cli import main
from modelrelease.cli.lint import lint_release, lint_text
from tests.fuzz_support import FuzzCase, fuzz_cases, probe_cases
from tests.integration.test_crd_apiserver import BASE_PATHS, INVALID, _with_spec

REPO = Path(__file__).resolve().parents[2]


def _refused_by_models(manifest: dict[str, Any]) -> bool:
    try:
        parse_release(manifest)
    except InvalidRelease:
        return True
    return False


@pytest.mark.parametrize(("manifest", "field"), [(c[1], c[2]) for c in INVALID], ids=[c[0] for c in INVALID])
def test_lint_refuses_every_manifest_the_api_server_refuses_naming_the_field(
    manifest: dict[str, Any], field: str
) -> None:
    problems = lint_release(manifest)
    assert any(line.startswith(field) for line in problems), problems


def _named(case: FuzzCase, serial: int) -> dict[str, Any]:
    """As test_api_fuzz sends it: the case with a name of its own."""
    return {**copy.deepcopy(case.manifest), "metadata": {"name": f"fz-{serial}", "namespace": "fuzz"}}


def test_lint_agrees_with_the_models_on_every_fuzz_probe() -> None:
    cases = probe_cases()
    refused = 0
    for serial, case in enumerate(cases):
        body = _named(case, serial)
        assert bool(lint_release(body)) == _refused_by_models(body), case.describe()
        refused += bool(lint_release(body))
    assert refused >= len(cases) // 3


@settings(max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_cases())
def test_lint_agrees_with_the_models_on_fuzzed_manifests(case: FuzzCase) -> None:
    body = _named(case, 1)
    assert bool(lint_release(body)) == _refused_by_models(body), case.describe()


def test_lint_agrees_with_the_models_on_every_base_path_the_api_server_was_asked_about() -> None:
    for path in BASE_PATHS:
        manifest = _with_spec(model={"basePath": path})
        assert bool(lint_release(manifest)) == _refused_by_models(manifest), path


def test_lint_refuses_what_any_object_needs_group_version_and_name() -> None:
    manifest = _with_spec()
    manifest["apiVersion"] = "modelrelease.io/v1"
    del manifest["metadata"]["name"]
    problems = lint_release(manifest)
    assert problems[0].startswith("apiVersion: is 'modelrelease.io/v1'")
    assert problems[1].startswith("metadata.name: Required value")


def test_lint_reads_several_documents_skips_other_kinds_and_names_document_and_release() -> None:
    bad = _with_spec(model={"version": 0})
    text = yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}, bad])
    result = lint_text(text, "all.yaml")
    assert result.releases == 1
    assert len(result.problems) == 1
    assert result.problems[0].startswith("all.yaml#1 digits: spec.model.version")
    assert lint_text("kind: Service\n", "svc.yaml").problems == ["svc.yaml: no ModelRelease in it"]
    assert lint_text("a: [\n", "broken.yaml").problems[0].startswith("broken.yaml: not YAML")


def test_lint_command_exits_1_on_problems_and_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release manifests; a file without one (the HTTPRoute beside full.yaml) is a problem by design.
    examples = sorted(
        str(p) for p in (REPO / "examples" / "digits").glob("*.yaml") if "kind: ModelRelease" in p.read_text()
    )
    assert main(["lint", *examples]) == 0
    assert "no problem" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(_with_spec(holdAt="canary-99"))))
    assert main(["lint", "-"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("<stdin> digits: spec.holdAt ")
    assert "1 problem(s)" in captured.err
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(_with_spec(model={"version": 0}))))
    assert main(["lint", "-o", "json", "-"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["problems"][0].startswith("<stdin> digits: spec.model.version")
    assert main(["lint", "/nonexistent.yaml"]) == 1
