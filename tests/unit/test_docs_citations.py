"""Code and docs cite only files that are in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in listed.stdout.splitlines() if (REPO / line).is_file()]


def test_nothing_cites_the_design_document_that_is_not_in_the_repository() -> None:
    citing = [
        str(path.relative_to(REPO))
        for path in tracked("*.py", "*.md", "*.yaml", "Makefile")
        if "DESIGN.md" in path.read_text(errors="replace") and path.name != Path(__file__).name
    ]
    assert citing == []


def test_relative_links_in_markdown_point_at_files_that_exist() -> None:
    broken = []
    for page in tracked("*.md"):
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)  # code is not a link
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", prose):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


def test_docs_named_in_code_exist() -> None:
    missing = []
    for path in tracked("operator/*.py", "devstack/*.py"):
        for name in set(re.findall(r"\bdocs/[\w./-]+\.md\b", path.read_text())):
            if not (REPO / name).exists():
                missing.append(f"{path.relative_to(REPO)} -> {name}")
    assert missing == []
