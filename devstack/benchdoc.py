"""docs/benchmarks.md: one section per benchmark, each rewritten by its own `make bench-*` run.

Why sections: the benchmarks run separately (and some take many minutes), so
each replaces only the section its markdown heads and keeps the others.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
PREAMBLE = "# Benchmarks\n\nNumbers measured on this project's machines.\n"


def write_section(markdown: str, path: Path = DOCS) -> None:
    """Replace the section headed by ``markdown``'s first line ("## Name") in ``path``, or add it at the end."""
    heading = markdown.splitlines()[0] if markdown else ""
    if not heading.startswith("## "):
        raise ValueError(f"a benchmark section starts with a '## ' heading, not {heading!r}")
    existing = path.read_text() if path.exists() else PREAMBLE
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(existing):
        updated = pattern.sub(lambda _: markdown.rstrip("\n") + "\n\n", existing).rstrip("\n") + "\n"
    else:
        updated = existing.rstrip("\n") + "\n\n" + markdown.rstrip("\n") + "\n"
    path.write_text(updated)
