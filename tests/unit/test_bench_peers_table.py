"""bench-peers' table, and the API requests it counts from the audit log.

Why: a peer that promotes a bad candidate stops its count of the
candidate's answers at the promotion, which hands the candidate every user;
a ratio of those counts would rank the tool that kept serving it as the
better one.  These tests pin what the ratio table says instead, and which
audit entries count as a controller's requests and writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from devstack import audit
from devstack.bench_peers import NO_SMOKE, Run, api_counts, table


def _run(tool: str, scenario: str, outcome: str, answers: int, seconds: float | None, smoke: bool = True) -> Run:
    return Run(tool, scenario, 10.0, answers, seconds, outcome, 100.0, 1.0, 1.0, smoke=smoke)


def _ratio_row(markdown: str, scenario: str, pair: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0] == scenario and cells[2] == pair:
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


def _event(agent: str, verb: str, resource: str, namespace: str, stage: str = "ResponseComplete") -> str:
    ref = {"resource": resource, "namespace": namespace} if namespace else {"resource": resource}
    return json.dumps({"stage": stage, "verb": verb, "userAgent": agent, "objectRef": ref})


def test_requests_count_every_verb_here_or_cluster_wide_and_writes_only_what_the_tests_devstack_logs(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.log"
    lines = [
        _event("flagger/v1", "get", "deployments", "ns"),  # a request, not a write
        _event("flagger/v1", "patch", "deployments", "ns"),  # both
        _event("flagger/v1", "get", "leases", "ns"),  # both: Lease reads are logged for the chaos trials
        _event("flagger/v1", "update", "canaries", "ns"),  # a request; its own resource is not a counted write
        _event("flagger/v1", "list", "canaries", ""),  # cluster-wide: a request
        _event("flagger/v1", "watch", "canaries", "", stage="ResponseStarted"),  # a watch, counted when it starts
        _event("flagger/v1", "watch", "canaries", "", stage="ResponseComplete"),  # ... and not again when it ends
        _event("flagger/v1", "get", "deployments", "other"),  # another namespace
        _event("devstack-podrunner", "patch", "pods", "ns"),  # another agent
    ]
    log.write_text("\n".join(lines) + "\n")
    assert api_counts(log, 0, ("flagger/",), "ns") == (2, 6)


def test_the_every_request_policy_keeps_every_rule_of_the_tests_devstack_before_its_catch_all() -> None:
    small, every = audit.policy(), audit.policy(every_request=True)
    assert small["rules"][-1] == {"level": "None"}
    assert every["rules"][: len(small["rules"]) - 1] == small["rules"][:-1]
    assert every["rules"][-1] == {"level": "Metadata"}
