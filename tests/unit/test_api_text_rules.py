"""Durations and PromQL placeholders: the Python checks and their CEL twins agree."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrelease.api import TEMPLATE_PLACEHOLDERS, parse_duration
from modelrelease.api.duration import DURATION_PATTERN
from modelrelease.api.templates import placeholder_cel_rule, unknown_placeholders


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), ("1.5s", 1.5), ("2h0m5s", 7205)],
)
def test_go_durations_parse_to_their_length(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "10 m", "1d", "-5s", "1h-30m", "9" * 25 + "s"])
def test_non_durations_are_refused_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30s, 10m"):
        parse_duration(text)


def _cel_placeholder_rule_in_python(text: str) -> bool:
    """What the CEL rule computes, transcribed: it must be true exactly when Python finds nothing unknown."""
    rule = placeholder_cel_rule()["rule"]
    replaced = re.findall(r'\.replace\("(\{\{\w+\}\})", ""\)', rule)
    assert replaced == ["{{" + name + "}}" for name in TEMPLATE_PLACEHOLDERS]
    for placeholder in replaced:
        text = text.replace(placeholder, "")
    return re.search(r"[{][{]|[}][}]", text) is None


PROMQL_PIECES = st.sampled_from(
    ["sum(", ")", "{", "}", 'model="', '"', "[", "]", "{{model}}", "{{interval}}", "{{pod}}", "{{", "}}", "x", " "]
)


@given(st.lists(PROMQL_PIECES, max_size=12).map("".join))
def test_python_and_cel_placeholder_checks_agree(text: str) -> None:
    assert (unknown_placeholders(text) == []) == _cel_placeholder_rule_in_python(text)


def test_duration_pattern_is_anchored_so_the_api_server_reads_it_like_python() -> None:
    assert DURATION_PATTERN.startswith("^") and DURATION_PATTERN.endswith("$")
