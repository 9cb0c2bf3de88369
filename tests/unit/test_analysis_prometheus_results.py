"""Reading Prometheus' instant-query results: one finite number, or a reason why not."""

from __future__ import annotations

from typing import Any

import pytest

from modelrelease.analysis.prometheus import _as_count, _NoValue, _single_number


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1700000000.0, value]}


def test_a_single_series_gives_its_value() -> None:
    assert _single_number([series("0.25")], "query") == 0.25


def test_a_scalar_result_gives_its_value() -> None:
    assert _single_number([1700000000.0, "3"], "query") == 3.0


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ([], "no data: the denominator query matched no series"),
        ([series("1", version="1"), series("2", version="2")], "returned 2 series; aggregate it"),
        ([series("NaN")], "returned NaN"),
        ([series("+Inf")], "returned +Inf"),
        ([series("abc")], "not a number"),
        ({"unexpected": True}, "returned dict"),
    ],
)
def test_anything_but_one_finite_number_is_no_value_with_a_reason(result: Any, reason: str) -> None:
    with pytest.raises(_NoValue, match=reason.replace("+", r"\+")):
        _single_number(result, "denominator")


def test_an_empty_numerator_suggests_or_vector_zero() -> None:
    with pytest.raises(_NoValue, match="or vector"):
        _single_number([], "numerator")


def test_extrapolated_counts_round_to_whole_events_and_never_go_negative() -> None:
    assert _as_count(99.6) == 100
    assert _as_count(-0.2) == 0
