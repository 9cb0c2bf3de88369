"""crds/ is generated from the models; these fail when someone edits one without the other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelrelease.api.crd import CRD_FILENAME, main, render_crd, write_crds

REPO = Path(__file__).resolve().parents[2]


def test_committed_crd_matches_what_the_models_generate() -> None:
    committed = (REPO / "crds" / CRD_FILENAME).read_text()
    assert committed == render_crd(), "crds/ is out of date with operator/modelrelease/api: run `make crds`"


def test_generation_is_deterministic() -> None:
    assert render_crd() == render_crd()


def test_make_crds_is_idempotent_and_leaves_an_unchanged_file_untouched(tmp_path: Path) -> None:
    first = write_crds(tmp_path)
    stamp = first.stat().st_mtime_ns
    second = write_crds(tmp_path)
    assert second == first
    assert second.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [CRD_FILENAME]


def test_the_make_crds_command_writes_into_the_named_directory(tmp_path: Path) -> None:
    target = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "modelrelease.api.crd", str(target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (target / CRD_FILENAME).read_text() == render_crd()


def test_the_command_without_a_directory_explains_its_usage() -> None:
    printed: list[str] = []
    assert main([], out=printed.append) == 2
    assert "usage: python -m modelrelease.api.crd <output directory>" in printed[0]
