"""docs/api.md is generated from the models; these fail when someone edits one without the other."""

from __future__ import annotations

from pathlib import Path

from modelrelease.api.crd import open_api_schema
from modelrelease.api.reference import main, render, write

REPO = Path(__file__).resolve().parents[2]


def test_committed_api_reference_matches_what_the_models_generate() -> None:
    assert (REPO / "docs" / "api.md").read_text() == render(), "docs/api.md is stale: run `make crds`"


def test_every_spec_and_status_field_is_documented() -> None:
    text = render()

    def fields(path: str, schema: dict) -> list[str]:  # type: ignore[type-arg]
        found = []
        for name, field in schema.get("properties", {}).items():
            found.append(name)
            child = field.get("items", field) if field.get("type") == "array" else field
            found += fields(f"{path}.{name}", child)
        return found

    schema = open_api_schema()
    for part in ("spec", "status"):
        for name in fields(part, schema["properties"][part]):
            assert f"`{name}`" in text, f"{name} is missing from the reference"


def test_cel_rule_messages_are_listed() -> None:
    assert "holdAt must be empty or the name of one of the stages" in render()


def test_writing_is_idempotent(tmp_path: Path) -> None:
    target = write(tmp_path / "api.md")
    stamp = target.stat().st_mtime_ns
    assert write(target).stat().st_mtime_ns == stamp


def test_the_command_without_a_file_explains_its_usage() -> None:
    printed: list[str] = []
    assert main([], out=printed.append) == 2
    assert "usage:" in printed[0]
