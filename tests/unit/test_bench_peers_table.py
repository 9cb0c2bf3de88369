"""bench-peers' table compares exposure only where both tools rolled the bad model back.

Why: a peer that promotes a bad candidate stops its count of the
candidate's answers at the promotion, which hands the candidate every user;
a ratio of those counts would rank the tool that kept serving it as the
better one.  These tests pin what the ratio table says instead.
"""

from __future__ import annotations

from devstack.bench_peers import NO_SMOKE, Run, table


def _run(tool: str, scenario: str, outcome: str, answers: int, seconds: float | None, smoke: bool = True) -> Run:
    return Run(tool, scenario, 10.0, answers, seconds, outcome, 100.0, 1.0, 1.0, smoke=smoke)


def _ratio_row(markdown: str, scenario: str, pair: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 8 and cells[0] == scenario and cells[2] == pair:
            return cells
    raise AssertionError(f"no ratio row for {scenario} {pair}")


def test_a_bad_model_both_tools_rolled_back_gets_the_ratio_of_medians() -> None:
    runs = [
        _run("operator", "v1-v3", "rolled back", 30, 20.0),
        _run("flagger", "v1-v3", "rolled back", 60, 50.0),
    ]
    row = _ratio_row(table(runs, [10.0], "10s"), "v1-v3", "operator / flagger")
    assert row[3:5] == ["0.50", "0.40"]


def test_a_bad_model_the_peer_promoted_gets_no_ratio_but_the_count_of_promotions() -> None:
    runs = [
        _run("operator", "v2-v5", "neither within 300 s", 1500, None),
        _run("flagger", "v2-v5", "promoted", 1700, 86.0),
        _run("flagger", "v2-v5", "rolled back", 40, 30.0),
    ]
    row = _ratio_row(table(runs, [10.0], "10s"), "v2-v5", "operator / flagger")
    assert row[3] == "peer promoted 1/2; ours undecided 1/1"
    assert row[4] == row[3]


def test_undecided_runs_are_counted_beside_the_ratio_of_those_that_rolled_back() -> None:
    runs = [
        _run("operator", "v1-v3", "rolled back", 50, 200.0, smoke=False),
        _run("operator", "v1-v3", "neither within 300 s", 60, None, smoke=False),
        _run("flagger", "v1-v3", "rolled back", 10, 40.0),
    ]
    row = _ratio_row(table(runs, [10.0], "10s"), "v1-v3", f"{NO_SMOKE} / flagger")
    assert row[3] == "5.50; ours undecided 1/2"
    assert row[4] == "5.00; ours undecided 1/2"


def test_the_no_smoke_variant_without_runs_has_no_row_but_a_tool_without_runs_is_said_unmeasured() -> None:
    markdown = table([_run("operator", "v1-v5", "promoted", 3000, 400.0)], [10.0], "10s")
    assert f"| v1-v5 | 10 | {NO_SMOKE} |" not in markdown
    assert "| v1-v5 | 10 | flagger | 0 | not measured yet |" in markdown
