"""The judgment benchmark measures the operator's judge, and writes its section without touching the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.bench_judgment import METRICS, _operators_verdict, ours_bound
from devstack.benchdoc import write_section


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 3), st.integers(1, 100_000), st.data(), st.sampled_from([0.01, 0.0025]))
def test_the_vectorised_judge_gives_the_operators_verdict(
    which: int, n: int, data: st.DataObject, alpha: float
) -> None:
    metric, bound = [(m, b) for m in METRICS for b in m.bounds][which]
    c_bad = data.draw(st.integers(0, n))
    s_bad = data.draw(st.integers(0, n))
    fail, ok = ours_bound(
        bound,
        np.array([[c_bad]], float),
        np.array([[n]], float),
        np.array([[s_bad]], float),
        np.array([[n]], float),
        alpha,
    )
    vectorised = "fail" if fail[0, 0] else "pass" if ok[0, 0] else "inconclusive"
    assert vectorised == _operators_verdict(metric, bound, c_bad, n, s_bad, n, alpha)


def test_the_judgment_section_replaces_itself_and_keeps_other_sections(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Chaos\n\nkill -9 numbers\n\n## Judgment\n\nold\n\n## Later\n\nkept\n")
    write_section("## Judgment\n\nnew table\n", doc)
    text = doc.read_text()
    assert "kill -9 numbers" in text and "## Later\n\nkept" in text
    assert "new table" in text and "old" not in text
    assert text.count("## Judgment") == 1


def test_the_judgment_section_is_added_to_a_missing_or_other_document(tmp_path: Path) -> None:
    missing = tmp_path / "new.md"
    write_section("## Judgment\n\nnumbers\n", missing)
    assert missing.read_text().startswith("# Benchmarks")
    other = tmp_path / "chaos.md"
    other.write_text("# Benchmarks\n\n## Chaos\n\nkill -9 numbers\n")
    write_section("## Judgment\n\nnumbers\n", other)
    assert other.read_text().index("## Chaos") < other.read_text().index("## Judgment")
