"""Fuzzed ModelRelease manifests through the operator's own code, no cluster: parse, render PromQL, write config.

What must hold for every manifest tests/fuzz_support.py makes (valid ones and
broken ones, injection strings in every string field):

- ``parse_release`` either returns or raises ``InvalidRelease`` whose every
  line starts with the path of a field; nothing else escapes it (no
  TypeError, no RecursionError), because the operator turns exactly that
  exception into a Valid=False condition and an event.
- For an accepted manifest, every metric's PromQL renders, and the rendered
  query has the same selectors and label matchers as the template, with
  exactly the substituted values: nothing a user puts in a model name, a
  class label or an interval can open or close a string, a selector or a
  comment.
- For an accepted manifest, the TF Serving model config the operator writes
  parses back (with TF Serving's own protobufs) to one model with exactly the
  spec's name, base path and version.
- The CRD's structural schema (everything but CEL, checked offline) refuses
  nothing that pydantic accepts: the operator never acts on a release the API
  server would have refused at ``kubectl apply``.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.modelserver.config import parse_model_server_config
from modelrelease.analysis.context import TemplateValues, promql_duration
from modelrelease.analysis.rendering import render
from modelrelease.analysis.templates import QueryPlan, plan_for
from modelrelease.api import InvalidRelease, ModelRelease, parse_release
from modelrelease.api.crd import open_api_schema
from modelrelease.kube.manifests import model_config_text
from tests.fuzz_support import INJECTIONS, SEEDS, SPEC_SHAPE, FuzzCase, deeply_nested, fuzz_cases, string_leaves
from tests.schema_check import structural_problems, without_null_fields

FUZZ = settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
NAMESPACE = "fuzz-ns"
RELEASE = "digits"
PATH_AT_START = re.compile(r"^(spec|metadata|apiVersion|kind|status)([.\[:]|\s)")


def _with_name(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["metadata"] = {"name": RELEASE, "namespace": NAMESPACE}
    return out


def parsed_or_problems(manifest: dict[str, Any]) -> ModelRelease | list[str]:
    """The release, or the problems; any other exception fails the test that calls this."""
    try:
        return parse_release(manifest)
    except InvalidRelease as refused:
        return refused.problems


# --- PromQL: selectors and matchers survive substitution


_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
      |(?P<comment>\#[^\n]*)
      |(?P<space>\s+)
      |(?P<word>[A-Za-z0-9_:.]+)
      |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>])
      |(?P<punct>[{}()\[\],])
      |(?P<other>.)""",
    re.X | re.S,
)
Token = tuple[str, str]


def tokens(query: str) -> list[Token]:
    return [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(query) if m.lastgroup not in ("space",)]


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return body if literal[0] == "`" else re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def skeleton(query: str) -> list[str]:
    """What a value must never change: the strings, comments and brackets of a query, in order (words aside)."""
    return [
        kind if kind in ("string", "comment") else text for kind, text in tokens(query) if kind not in ("word", "op")
    ]


def matchers(query: str) -> list[tuple[str, str, str]]:
    """Each ``label op "value"`` inside a ``{...}`` selector, with the value unescaped."""
    found: list[tuple[str, str, str]] = []
    stream = tokens(query)
    depth = 0
    for index, (kind, text) in enumerate(stream):
        if (kind, text) == ("punct", "{"):
            depth += 1
        elif (kind, text) == ("punct", "}"):
            depth = max(0, depth - 1)
        elif (
            depth
            and kind == "string"
            and index >= 2
            and stream[index - 1][0] == "op"
            and stream[index - 2][0] == "word"
        ):
            found.append((stream[index - 2][1], stream[index - 1][1], _unquote(text)))
    return found


CANONICAL = TemplateValues(model="MODELQX", version=987654321, namespace="nsqx", release="relqx", interval="123s")


def _expected_value(text: str, values: TemplateValues) -> str:
    for name, canonical in CANONICAL.as_dict().items():
        text = text.replace(canonical, values.as_dict()[name])
    return text


def substitution_escapes(template: str, values: TemplateValues) -> list[str]:
    """How rendering ``template`` with ``values`` differs in structure from rendering it with inert values."""
    reference, actual = render(template, CANONICAL), render(template, values)
    problems = []
    if skeleton(reference) != skeleton(actual):
        problems.append(f"structure changed: {skeleton(reference)} -> {skeleton(actual)}")
    expected = [(label, op, _expected_value(value, values)) for label, op, value in matchers(reference)]
    if matchers(actual) != expected:
        problems.append(f"matchers changed: expected {expected}, rendered {matchers(actual)}")
    return problems


def _queries(plan: QueryPlan) -> list[str]:
    return [q for q in (plan.value, plan.numerator, plan.denominator, plan.samples) if q is not None]


def check_promql(release: ModelRelease) -> list[str]:
    """Render every metric of an accepted release for its model and version; report anything that escaped."""
    spec = release.spec
    values = TemplateValues(
        model=spec.model.name,
        version=spec.model.version,
        namespace=NAMESPACE,
        release=RELEASE,
        interval=promql_duration(spec.analysis.interval),
    )
    problems = []
    for metric in spec.analysis.metrics:
        for query in _queries(plan_for(metric)):
            problems += [f"{metric.name}: {p}" for p in substitution_escapes(query, values)]
    return problems


def check_model_config(release: ModelRelease) -> list[str]:
    """The config file TF Serving would read names exactly this model, path and version, and nothing else."""
    model = release.spec.model
    text = model_config_text(model.name, model.base_path, model.version)
    try:
        configs = parse_model_server_config(text)
    except Exception as error:  # the server would refuse to start: report it with the text
        return [f"config does not parse ({error}):\n{text}"]
    read = [(c.name, c.base_path, c.policy.kind, c.policy.versions) for c in configs]
    wanted = [(model.name, model.base_path, "specific", (model.version,))]
    return [] if read == wanted else [f"config reads back as {read}, not {wanted}"]


SPEC_SCHEMA = open_api_schema()["properties"]["spec"]


def check_schema_agrees(manifest: dict[str, Any]) -> list[str]:
    """What the CRD's structural schema refuses in a manifest pydantic accepted (should be nothing)."""
    return structural_problems(SPEC_SCHEMA, without_null_fields(manifest["spec"]), "spec")


# --- the checks are able to fail


def test_substitution_check_catches_a_value_that_closes_its_string() -> None:
    unsafe = TemplateValues.__new__(TemplateValues)
    object.__setattr__(unsafe, "model", 'x"} or vector(1) #')
    for name, value in (("version", 1), ("namespace", "ns"), ("release", "r"), ("interval", "30s")):
        object.__setattr__(unsafe, name, value)
    assert substitution_escapes('sum(x{model="{{model}}"})', unsafe)


def test_config_check_catches_a_path_that_starts_a_second_model() -> None:
    release = parse_release(_with_name(SEEDS[0]))
    release.spec.model.base_path = '/m" } config { name: "evil" base_path: "/etc'
    assert check_model_config(release)


def test_schema_check_catches_a_type_and_an_unknown_field() -> None:
    manifest = _with_name(SEEDS[0])
    manifest["spec"]["serving"]["replicas"] = "3"
    manifest["spec"]["servng"] = {}
    assert len(check_schema_agrees(manifest)) == 2


# --- the fuzz


def _checked(case: FuzzCase, outcomes: Counter[str]) -> None:
    manifest = _with_name(case.manifest)
    result = parsed_or_problems(manifest)
    if isinstance(result, list):
        outcomes["refused"] += 1
        assert result, case.describe()
        unnamed = [line for line in result if not PATH_AT_START.match(line)]
        assert not unnamed, f"problems without a field path: {unnamed} ({case.describe()})"
        return
    outcomes["accepted"] += 1
    found = check_promql(result) + check_model_config(result) + check_schema_agrees(manifest)
    assert not found, f"{case.describe()}:\n" + "\n".join(found)


def test_seeds_are_valid_releases() -> None:
    for seed in SEEDS:
        release = parse_release(_with_name(seed))
        assert not check_promql(release) + check_model_config(release) + check_schema_agrees(_with_name(seed))


def test_fuzzed_manifests_are_refused_by_field_or_rendered_and_configured_safely() -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(fuzz_cases())
    def run(case: FuzzCase) -> None:
        _checked(case, outcomes)

    run()
    # Both sides must be reached, or the fuzz says little: a strategy that
    # stopped producing valid (or invalid) manifests fails here.
    assert outcomes["accepted"] >= 60 and outcomes["refused"] >= 60, outcomes


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_string_field_meets_every_injection(seed: int) -> None:
    """Deterministic: each injection alone and glued to the valid value, in each string of each seed."""
    outcomes: Counter[str] = Counter()
    base = _with_name(SEEDS[seed])
    for path, _ in string_leaves(base["spec"], SPEC_SHAPE):
        for injection in INJECTIONS:
            for glue in ("alone", "after"):
                manifest = copy.deepcopy(base)
                target = manifest["spec"]
                for part in path[:-1]:
                    target = target[part]
                target[path[-1]] = injection if glue == "alone" else target[path[-1]] + injection
                _checked(FuzzCase(manifest, [f"{path} {glue} {injection!r:.40}"]), outcomes)
    assert outcomes["refused"] and outcomes["accepted"], outcomes


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=30,
    )
)
@FUZZ
def test_arbitrary_json_in_place_of_the_spec_is_refused_by_field(spec: Any) -> None:
    result = parsed_or_problems({"apiVersion": "modelrelease.io/v1alpha1", "kind": "ModelRelease", "spec": spec})
    if isinstance(result, list):
        assert all(PATH_AT_START.match(line) for line in result), result


@pytest.mark.parametrize("field", ["podTemplate", "resources"])
def test_deeply_nested_pass_through_fields_do_not_crash_the_parser(field: str) -> None:
    manifest = _with_name(SEEDS[0])
    manifest["spec"]["serving"][field] = deeply_nested(3000)
    result = parsed_or_problems(manifest)
    assert isinstance(result, ModelRelease) or all(PATH_AT_START.match(line) for line in result)
