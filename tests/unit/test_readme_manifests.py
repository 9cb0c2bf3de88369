"""The README tells the truth: every manifest it shows is a file in examples/ or charts/, compared by content.

A block with a ``kind`` must equal one of those files (as YAML: comments and
flow style aside); a fragment (no ``kind``, e.g. an excerpt of a spec) must
be contained in one of them, list items included.  Files are read at test
time, so a change to an example fails here until the README follows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, flags=re.S)


def documents() -> list[tuple[Path, Any]]:
    found = []
    for root in ("examples", "charts"):
        for path in sorted((REPO / root).rglob("*.yaml")):
            if "templates" in path.parts:
                continue  # Helm templates are not YAML until rendered
            for document in yaml.safe_load_all(path.read_text()):
                if document is not None:
                    found.append((path, document))
    return found


def contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and all(any(contains(b, s) for b in big) for s in small)
    return bool(big == small)


def nodes(value: Any) -> list[Any]:
    """Every mapping in a document, so a fragment may match at any depth."""
    found = [value] if isinstance(value, dict) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        found += nodes(child)
    return found


def test_the_readme_shows_yaml() -> None:
    assert len(blocks()) >= 2


def test_every_manifest_in_the_readme_is_a_file_of_the_repository() -> None:
    files = documents()
    for block in blocks():
        shown = yaml.safe_load(block)
        if isinstance(shown, dict) and "kind" in shown:
            matches = [path for path, document in files if document == shown]
            assert matches, f"the README shows a manifest that no file in examples/ or charts/ holds:\n{block}"
        else:
            matches = [path for path, document in files if any(contains(node, shown) for node in nodes(document))]
            assert matches, f"the README shows a fragment that no file in examples/ or charts/ contains:\n{block}"


def test_the_minimal_example_is_the_one_the_readme_links() -> None:
    minimal = yaml.safe_load((REPO / "examples" / "digits" / "minimal.yaml").read_text())
    assert any(yaml.safe_load(block) == minimal for block in blocks())
