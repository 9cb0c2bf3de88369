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

The last section pins each disagreement the fuzz found between the two
validators (found on devstack: tests/integration/test_api_fuzz.py), each
with a test that failed before its fix.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable
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
from tests.fuzz_support import (
    INJECTIONS,
    SEEDS,
    SPEC_SHAPE,
    FuzzCase,
    deeply_nested,
    dotted,
    fuzz_cases,
    probe_cases,
    string_leaves,
)
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


def check_model_config(release: ModelRelease, writer: Callable[[str, str, int], str] = model_config_text) -> list[str]:
    """The config file TF Serving would read names exactly this model, path and version, and nothing else."""
    model = release.spec.model
    text = writer(model.name, model.base_path, model.version)
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


def _pasting_writer(name: str, base_path: str, version: int) -> str:
    """A config writer that pastes values between quotes unescaped, as the operator's first one did."""
    policy = f"model_version_policy {{ specific {{ versions: {version} }} }}"
    return f'model_config_list {{ config {{ name: "{name}" base_path: "{base_path}" {policy} }} }}'


def test_config_check_catches_a_path_that_starts_a_second_model() -> None:
    release = parse_release(_with_name(SEEDS[0]))
    assert not check_model_config(release, _pasting_writer)
    release.spec.model.base_path = '/m" } config { name: "evil" base_path: "/etc'
    assert check_model_config(release, _pasting_writer)


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


def test_engine_sensitive_characters_and_type_coercions_are_refused_by_field_or_handled_safely() -> None:
    outcomes: Counter[str] = Counter()
    for case in probe_cases():
        _checked(case, outcomes)
    assert outcomes["refused"] and outcomes["accepted"], outcomes


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


# --- defects the fuzz found, each pinned


def _probe(path: tuple[str | int, ...], value: Any) -> ModelRelease | list[str]:
    manifest = _with_name(SEEDS[1])
    target: Any = manifest["spec"]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return parsed_or_problems(manifest)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("serving", "replicas"), "3"),
        (("serving", "replicas"), True),
        (("paused",), "true"),
        (("paused",), 1),
        (("rollback", "automatic"), "false"),
        (("stages", 0, "smoke", "minAccuracy"), "0.5"),
        (("analysis", "failureLimit"), "2"),
    ],
)
def test_json_types_are_taken_as_strictly_as_the_api_server_takes_them(path: tuple[str | int, ...], value: Any) -> None:
    result = _probe(path, value)
    assert isinstance(result, list), f"{value!r} accepted at {path}; the API server refuses it"
    assert result[0].startswith(dotted(path) + ":"), result


def test_an_integer_is_still_a_number() -> None:
    result = _probe(("stages", 0, "smoke", "minAccuracy"), 1)
    assert isinstance(result, ModelRelease) and result.spec.stages[0].smoke is not None
    assert result.spec.stages[0].smoke.min_accuracy == 1.0


@pytest.mark.parametrize("path", [("model", "version"), ("analysis", "metrics", 0, "minRequests")])
def test_integers_beyond_int64_are_refused_as_the_api_server_refuses_them(path: tuple[str | int, ...]) -> None:
    assert isinstance(_probe(path, 2**63 - 1), ModelRelease)
    result = _probe(path, 2**63)
    assert isinstance(result, list) and result[0].startswith(dotted(path) + ":"), result


_PYTHON_ONLY_ESCAPES = re.compile(r"\\[sSdDwWbB]")


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        found += [rule["rule"] for rule in node.get("x-kubernetes-validations", []) if "matches(" in rule["rule"]]
        return found + [p for key, child in node.items() if key != "pattern" for p in _patterns(child)]
    if isinstance(node, list):
        return [p for child in node for p in _patterns(child)]
    return []


def test_no_crd_pattern_uses_a_class_escape_python_reads_differently_from_re2() -> None:
    """Python's \\s, \\d, \\w and \\b are Unicode-aware, RE2's are ASCII: a no-break space passed one and not the other."""
    assert not [p for p in _patterns(open_api_schema()) if _PYTHON_ONLY_ESCAPES.search(p)]


def test_a_managed_flag_with_a_trailing_newline_is_refused_by_the_cel_rule_too() -> None:
    """Python's $ also matches before a final newline, RE2's only at the end: read the pattern as RE2 does."""
    from modelrelease.api.spec import MANAGED_FLAG_PATTERN

    as_re2_reads_it = MANAGED_FLAG_PATTERN.replace("$", r"\Z")
    assert re.search(as_re2_reads_it, "--model_name\n")
    assert re.search(as_re2_reads_it, "--port")
    assert not re.search(as_re2_reads_it, "--model_name_suffix=x")


@pytest.mark.parametrize("blank", [" ", "\t", "\n", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000"])
def test_a_blank_query_is_judged_as_the_api_server_judges_it(blank: str) -> None:
    """The API server's pattern reads whitespace as RE2 does ([\\t\\n\\f\\r ]); the Python check must agree."""
    from modelrelease.api.templates import PromQLText

    re2_accepts = re.search(r"[^\t\n\f\r ]", blank) is not None
    try:
        PromQLText().check(blank)
        python_accepts = True
    except ValueError:
        python_accepts = False
    assert python_accepts == re2_accepts


_DEEP_READ = """
import json, sys
from modelrelease.depth import allow_deepest_objects
from modelrelease.api import parse_release
from modelrelease.kube.manifests import Owner, build_deployment
allow_deepest_objects()
depth = int(sys.argv[1])
seed = json.loads(sys.argv[2])
seed["metadata"] = {"name": "deep"}
seed["spec"]["serving"]["podTemplate"] = {"x": "@"}
text = json.dumps(seed).replace('"@"', '{"n": ' * depth + "1" + "}" * depth)
release = parse_release(json.loads(text))
deployment = build_deployment(Owner("deep", "ns", "uid"), release.spec, 1, "stable", 1)
print(len(json.dumps(deployment)))
"""


def test_the_operator_process_reads_an_object_as_deep_as_the_api_server_stores() -> None:
    """In a child process (the limit is process-wide): decode, parse, build and encode a 9,990-deep podTemplate."""
    import json
    import os
    import subprocess
    import sys

    from modelrelease.depth import KUBERNETES_MAX_JSON_DEPTH

    depth = str(KUBERNETES_MAX_JSON_DEPTH - 10)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _DEEP_READ, depth, json.dumps(SEEDS[0])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 7 * int(depth)  # the nesting made it into the Deployment


def _bounds(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        found = [(key, node[key]) for key in ("minimum", "maximum") if key in node]
        return found + [b for child in node.values() for b in _bounds(child)]
    if isinstance(node, list):
        return [b for child in node for b in _bounds(child)]
    return []


def test_every_numeric_bound_survives_the_api_servers_float64() -> None:
    """The API server keeps minimum/maximum as float64: 2**63 - 1 came back as 2**63, read as -2**63 for integers."""
    for key, bound in _bounds(open_api_schema()):
        assert float(bound) == bound and -(2**63) < float(bound) < 2**63, (key, bound)
