"""Hypothesis strategies for ModelRelease manifests, valid and invalid, to fuzz the API.

Why mutate valid manifests rather than generate from nothing: a random object
is refused at its first field and never reaches the rules behind it; a valid
release changed in one to three places reaches every rule, and about a third
of the results are still valid, so the operator gets real work too.

Why the shapes are read from the pydantic models (``ModelReleaseSpec`` and
everything below it) instead of written out here: a field added to the API
is fuzzed the day it lands, with the types, bounds and string rules the
models declare, and this module never drifts from the API it tests.

Every string field is a target for injection: PromQL (``"}) or vector(1) #``),
TF Serving config text (``base_path: "/etc"``), placeholders (``{{model}}``),
quotes, backslashes, newlines, control characters, unicode whitespace (which
Python's ``\\s`` and Go's RE2 ``\\s`` read differently) and very long strings.
Two mutations sweep every string leaf at once, one with values each field's
own rule accepts (so injections that ARE allowed reach the operator, the PromQL
renderer and the config writer), one with anything at all.
"""

from __future__ import annotations

import copy
import reprlib
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from modelrelease.api import ModelReleaseSpec
from modelrelease.api.constrained import ConstrainedText
from modelrelease.api.duration import DurationRule
from modelrelease.api.names import StringRule
from modelrelease.api.templates import TEMPLATE_PLACEHOLDERS, PromQLText

REPO = Path(__file__).resolve().parents[1]
API_VERSION = "modelrelease.io/v1alpha1"

Draw = Callable[[st.SearchStrategy[Any]], Any]
PathPart = str | int

INJECTIONS: tuple[str, ...] = (
    '"}) or vector(1) #',
    '",version=~".+',
    "{{model}}",
    "{{pod}}",
    "{{",
    "}}",
    "{{ model }}",
    '"',
    "'",
    '\\"',
    "\\",
    "\n",
    "a\nb",
    "\r\n",
    "\t",
    "\x00",
    "\x1c",
    "\x7f",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\u202e",
    "é",
    "模型",
    "\U0001f600",
    'base_path: "/etc"',
    '" } config { name: "evil" base_path: "/etc',
    "${HOME}",
    "$(id)",
    "`id`",
    "; rm -rf /",
    "../../etc/passwd",
    "%s%n",
    "",
    " ",
    "x" * 5000,
    "{{model}}" * 600,
)
"""Strings tried in every string field, alone and glued to a valid value."""

MANAGED_FLAG_ATTEMPTS: tuple[str, ...] = (
    "--model_name=evil",
    "-port=1",
    "--model_base_path",
    "--model_name\n",
    "--model_config_file=/etc/passwd",
    "---model_name=x",
    "--model_name_suffix=ok",
    "--enable_batching=false",
)

PROMQL_PIECES: tuple[str, ...] = (
    "sum(",
    ")",
    "rate(",
    "increase(",
    "x_total",
    "{",
    "}",
    'model="',
    '"',
    "[",
    "]",
    ",",
    " ",
    "\n",
    "#",
    " or vector(1)",
    '"}) or vector(1) #',
    "\\",
    "{{",
    "}}",
    "{{pod}}",
    *("{{" + name + "}}" for name in TEMPLATE_PLACEHOLDERS),
)

DURATIONS: tuple[str, ...] = ("1s", "2s", "30s", "500ms", "1.5m", "10m", "1h30m", "8760h", "0s", "999ms")
BAD_DURATIONS: tuple[str, ...] = ("0", "30", "1d", "-5s", "8761h", "1h-30m", "10 m", "9" * 25 + "s", "1e3s", "0.5ms")

UNKNOWN_FIELD_NAMES: tuple[str, ...] = ("replica", "basepath", "extra", "status", "x-kubernetes", '"', "a.b", "0")


# --- the shapes, read from the pydantic models


@dataclass(frozen=True)
class Shape:
    """What one field holds, as the pydantic annotation says: kind, bounds, string rule, choices."""

    kind: Literal["model", "list", "dict", "str", "int", "float", "bool", "any"]
    model: type[BaseModel] | None = None
    item: Shape | None = None
    text: ConstrainedText | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    choices: tuple[Any, ...] = ()
    required: bool = False


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_bounds(list(item.metadata)))
        elif isinstance(item, annotated_types.Ge):
            found["minimum"] = item.ge
        elif isinstance(item, annotated_types.Le):
            found["maximum"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            found["min_items"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            found["max_items"] = item.max_length
        elif isinstance(item, ConstrainedText):
            found["text"] = item
    return found


def shape_of(annotation: Any, metadata: list[Any] | None = None) -> Shape:
    """The Shape of a type annotation plus its ``Annotated``/``Field`` metadata."""
    metadata = list(metadata or [])
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return shape_of(base, metadata + extra)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        assert len(options) == 1, f"unexpected union {annotation}"
        return shape_of(options[0], metadata)
    bounds = _bounds(metadata)
    if origin is Literal:
        return Shape("str", choices=get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        return Shape("list", item=shape_of(item), min_items=bounds.get("min_items"), max_items=bounds.get("max_items"))
    if origin is dict:
        _, value = get_args(annotation)
        return Shape("dict", item=shape_of(value), min_items=bounds.get("min_items"), max_items=bounds.get("max_items"))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("model", model=annotation)
    if annotation is str:
        text = bounds.get("text")
        max_length = getattr(text, "max_length", None) or bounds.get("max_items")
        return Shape("str", text=text, max_length=max_length)
    if annotation is bool:
        return Shape("bool")
    if annotation in (int, float):
        kind: Literal["int", "float"] = "int" if annotation is int else "float"
        return Shape(kind, minimum=bounds.get("minimum"), maximum=bounds.get("maximum"))
    if annotation is Any or annotation is typing.Any:
        return Shape("any")
    raise TypeError(f"no fuzz shape for {annotation!r}")


def field_shapes(model: type[BaseModel]) -> dict[str, Shape]:
    """Wire name -> Shape for each field of ``model`` (``json_schema_extra`` enums become choices)."""
    shapes: dict[str, Shape] = {}
    for name, info in model.model_fields.items():
        shape = shape_of(info.annotation, list(info.metadata))
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        enum = extra.get("enum")
        if isinstance(enum, list):
            shape = Shape("str", choices=tuple(enum))
        shape = Shape(**{**shape.__dict__, "required": info.is_required()})
        shapes[info.alias or to_camel(name)] = shape
    return shapes


def string_leaves(
    value: Any, shape: Shape, path: tuple[PathPart, ...] = ()
) -> Iterator[tuple[tuple[PathPart, ...], Shape]]:
    """Every string in ``value`` (a manifest fragment of ``shape``), with its path and its own Shape."""
    if shape.kind == "str" and isinstance(value, str):
        yield path, shape
    elif shape.kind == "model" and isinstance(value, dict):
        assert shape.model is not None
        shapes = field_shapes(shape.model)
        for key, child in value.items():
            if key in shapes:
                yield from string_leaves(child, shapes[key], (*path, key))
    elif shape.kind == "list" and isinstance(value, list) and shape.item is not None:
        for index, child in enumerate(value):
            yield from string_leaves(child, shape.item, (*path, index))
    elif shape.kind == "dict" and isinstance(value, dict) and shape.item is not None:
        for key, child in value.items():
            yield from string_leaves(child, shape.item, (*path, key))


SPEC_SHAPE = Shape("model", model=ModelReleaseSpec)


# --- valid and invalid values for one shape


def _accepts(rule: ConstrainedText | None, text: str) -> bool:
    if rule is None:
        return True
    try:
        rule.check(text)
    except ValueError:
        return False
    return True


def _promql() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(PROMQL_PIECES), min_size=1, max_size=14).map("".join)


def valid_text(shape: Shape) -> st.SearchStrategy[str]:
    """Strings the field's own rule accepts, as nasty as the rule allows."""
    rule = shape.text
    if shape.choices:
        return st.sampled_from([str(choice) for choice in shape.choices])
    if isinstance(rule, StringRule):
        nasty = [text for text in INJECTIONS if _accepts(rule, text)]
        generated = st.from_regex(rule.pattern, fullmatch=True).filter(lambda text: len(text) <= rule.max_length)
        glued = st.tuples(generated, st.sampled_from(INJECTIONS)).map("".join).filter(lambda t: _accepts(rule, t))
        return st.one_of(generated, glued, *([st.sampled_from(nasty)] if nasty else []))
    if isinstance(rule, DurationRule):
        return st.sampled_from([text for text in DURATIONS if _accepts(rule, text)])
    if isinstance(rule, PromQLText):
        return st.one_of(_promql(), st.sampled_from(INJECTIONS)).filter(lambda text: _accepts(rule, text))
    limit = shape.max_length or 1024
    return st.one_of(st.sampled_from([t for t in INJECTIONS if len(t) <= limit]), st.text(max_size=min(limit, 40)))


def invalid_text(shape: Shape, current: Any) -> st.SearchStrategy[str]:
    """Strings that should be refused by most fields: injections, glued to the current value or not."""
    base = current if isinstance(current, str) else ""
    injection = st.sampled_from(INJECTIONS)
    options = [
        injection,
        injection.map(lambda text: base + text),
        injection.map(lambda text: text + base),
        st.just("a" * ((shape.max_length or 4096) + 1)),
    ]
    if shape.choices:
        options.append(
            st.sampled_from([str(c).upper() for c in shape.choices] + [str(c).title() for c in shape.choices])
        )
    elif shape.text is None:  # a free string: serving.args items and header values
        options.append(st.sampled_from(MANAGED_FLAG_ATTEMPTS))
    if isinstance(shape.text, DurationRule):
        options.append(st.sampled_from(BAD_DURATIONS))
    return st.one_of(options)


def _number_range(shape: Shape) -> tuple[int, int]:
    low = int(shape.minimum) if shape.minimum is not None else -1000
    high = int(shape.maximum) if shape.maximum is not None else max(low, 0) + 1000
    return low, high


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.sampled_from(INJECTIONS[:20]))
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(INJECTIONS[:20]), children, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def deeply_nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def valid_value(shape: Shape, draw: Draw) -> Any:
    """A value of the right type within the declared bounds (cross-field rules may still refuse it)."""
    if shape.kind == "str":
        return draw(valid_text(shape))
    if shape.kind == "bool":
        return draw(st.booleans())
    if shape.kind == "int":
        low, high = _number_range(shape)
        return draw(st.one_of(st.sampled_from([low, high]), st.integers(low, high)))
    if shape.kind == "float":
        low = shape.minimum if shape.minimum is not None else -1e9
        high = shape.maximum if shape.maximum is not None else 1e9
        return draw(st.one_of(st.sampled_from([low, high]), st.floats(low, high, allow_nan=False)))
    if shape.kind == "model":
        assert shape.model is not None
        return valid_model(shape.model, draw)
    if shape.kind == "list":
        assert shape.item is not None
        low = shape.min_items or 0
        count = draw(st.integers(low, max(low, min(shape.max_items or 3, 3))))
        return [valid_value(shape.item, draw) for _ in range(count)]
    if shape.kind == "dict":
        if shape.item is not None and shape.item.kind == "str":
            keys = st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True)
            return draw(st.dictionaries(keys, valid_text(shape.item), min_size=shape.min_items or 0, max_size=2))
        return draw(
            st.one_of(st.just({}), st.dictionaries(st.sampled_from(["nodeSelector", "x"]), json_values(), max_size=2))
        )
    return draw(json_values())


def valid_model(model: type[BaseModel], draw: Draw) -> dict[str, Any]:
    """Required fields always, optional ones sometimes, each with a valid value."""
    out: dict[str, Any] = {}
    for key, shape in field_shapes(model).items():
        if shape.required or draw(st.booleans()):
            out[key] = valid_value(shape, draw)
    return out


WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "str": (3, 0.5, True, [], {}, ["x"]),
    "int": ("3", 3.5, 3.0, True, [], {}, "1e3"),
    "float": ("0.5", True, [], {}, "nan"),
    "bool": ("true", 1, 0, "yes", [], {}),
    "list": ({}, "x", 3, [[]]),
    "dict": ([], "x", 3, True),
    "model": ("x", [], 3, True),
    "any": (),
}


def invalid_value(shape: Shape, draw: Draw, current: Any) -> Any:
    """A wrong type, an out-of-range number, an injected or over-long string, a list too long or empty."""
    options: list[st.SearchStrategy[Any]] = []
    if WRONG_TYPES[shape.kind]:
        options.append(st.sampled_from(WRONG_TYPES[shape.kind]))
    if shape.kind == "str":
        options.append(invalid_text(shape, current))
    if shape.kind in ("int", "float"):
        edges: list[Any] = [2**63, -(2**63) - 1, 2**64, 1e308, -1e308]
        if shape.minimum is not None:
            edges.append(shape.minimum - (1 if shape.kind == "int" else 1e-9))
        if shape.maximum is not None:
            edges.append(shape.maximum + (1 if shape.kind == "int" else 1e-9))
        options.append(st.sampled_from(edges))
    if shape.kind == "list" and isinstance(current, list):
        too_many = (shape.max_items or 64) + 1
        options.append(st.just([]))
        if current:
            options.append(st.just([copy.deepcopy(current[0]) for _ in range(too_many)]))
            options.append(st.just([*current, copy.deepcopy(current[-1])]))
            options.append(st.just(list(reversed(current))))
    if shape.kind in ("dict", "any"):
        options.append(st.just(deeply_nested(draw(st.sampled_from([20, 200])))))
    if shape.kind == "dict" and shape.item is not None and shape.item.kind == "str":
        options.append(
            st.dictionaries(st.sampled_from(INJECTIONS), st.sampled_from(INJECTIONS), min_size=1, max_size=2)
        )
    return draw(st.one_of(options))


# --- mutations of a whole manifest


@dataclass
class FuzzCase:
    """A manifest and what was done to its seed (paths in manifest notation), for the report of a failure."""

    manifest: dict[str, Any]
    mutations: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.mutations) or "seed unchanged"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 60, 60


def _brief(value: Any) -> str:
    """A short repr, safe for deeply nested values (a plain repr of 1500 levels overflows the stack)."""
    return _REPR.repr(value)


def dotted(path: tuple[PathPart, ...], root: str = "spec") -> str:
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _mutate(
    value: Any, shape: Shape, draw: Draw, path: tuple[PathPart, ...], log: list[str], gentle: bool = False
) -> Any:
    """One mutation somewhere inside ``value``; returns the new value (the input may be changed in place).

    ``gentle`` keeps to type-correct changes (a valid value, a dropped field),
    which mostly still pass, so the operator gets accepted releases to handle.
    """
    if shape.kind == "model" and isinstance(value, dict):
        assert shape.model is not None
        shapes = field_shapes(shape.model)
        if not gentle and draw(st.integers(0, 39)) == 0:
            key = draw(st.sampled_from(UNKNOWN_FIELD_NAMES))
            value[key] = draw(st.sampled_from(["x", 1, {}, INJECTIONS[0]]))
            log.append(f"{dotted((*path, key))}: unknown field")
            return value
        key = draw(st.sampled_from(sorted(shapes)))
        child_shape = shapes[key]
        present = key in value
        ops = ["valid", "valid"] + (["drop", "descend", "descend", "descend"] if present else [])
        if not gentle:
            ops += ["invalid", "null"]
        op = draw(st.sampled_from(ops))
        where = dotted((*path, key))
        if op == "drop":
            del value[key]
            log.append(f"{where}: dropped")
        elif op == "null":
            value[key] = None
            log.append(f"{where}: null")
        elif op == "valid":
            value[key] = valid_value(child_shape, draw)
            log.append(f"{where}: valid {_brief(value[key])}")
        elif op == "invalid":
            value[key] = invalid_value(child_shape, draw, value.get(key))
            log.append(f"{where}: invalid {_brief(value[key])}")
        else:
            value[key] = _mutate(value[key], child_shape, draw, (*path, key), log, gentle)
        return value
    if shape.kind == "list" and isinstance(value, list) and value and shape.item is not None:
        index = draw(st.integers(0, len(value) - 1))
        list_ops = ["descend", "descend", "remove", "duplicate", "swap", "append"]
        op = draw(st.sampled_from(list_ops if gentle else [*list_ops, "invalid"]))
        where = dotted((*path, index))
        if op == "remove":
            del value[index]
            log.append(f"{where}: removed")
        elif op == "duplicate":
            value.insert(index, copy.deepcopy(value[index]))
            log.append(f"{where}: duplicated")
        elif op == "swap" and len(value) > 1:
            other = draw(st.integers(0, len(value) - 1))
            value[index], value[other] = value[other], value[index]
            log.append(f"{where}: swapped with [{other}]")
        elif op == "append":
            value.append(valid_value(shape.item, draw))
            log.append(f"{dotted(path)}: appended {_brief(value[-1])}")
        elif op == "invalid":
            value[index] = invalid_value(shape.item, draw, value[index])
            log.append(f"{where}: invalid {_brief(value[index])}")
        else:
            value[index] = _mutate(value[index], shape.item, draw, (*path, index), log, gentle)
        return value
    if shape.kind == "dict" and isinstance(value, dict) and value and shape.item is not None:
        key = draw(st.sampled_from(sorted(value)))
        value[key] = _mutate(value[key], shape.item, draw, (*path, key), log, gentle)
        return value
    if gentle or draw(st.booleans()):
        new = valid_value(shape, draw)
        log.append(f"{dotted(path)}: valid {_brief(new)}")
    else:
        new = invalid_value(shape, draw, value)
        log.append(f"{dotted(path)}: invalid {_brief(new)}")
    return new


def _set(root: Any, path: tuple[PathPart, ...], new: Any) -> None:
    target = root
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new


def _sweep_strings(spec: dict[str, Any], draw: Draw, log: list[str], valid: bool) -> None:
    """Replace every string leaf at once: with values its rule accepts, or with any injection."""
    leaves = list(string_leaves(spec, SPEC_SHAPE))
    for path, shape in leaves:
        if valid and (shape.choices or path == ("holdAt",)):
            continue  # a template or router name, or holdAt, has no injection it accepts
        new = draw(valid_text(shape)) if valid else draw(invalid_text(shape, None))
        _set(spec, path, new)
    log.append(f"spec: every string ({len(leaves)}) replaced by {'valid' if valid else 'any'} injection")


def _stage_oddity(spec: dict[str, Any], draw: Draw, log: list[str]) -> None:
    """Stage lists the cross-stage rules are about, and holdAt pointing at them (or not)."""
    stages = spec.setdefault("stages", [{"name": "full", "weight": 100}])
    if not isinstance(stages, list) or not stages:
        stages = spec["stages"] = [{"name": "full", "weight": 100}]
    kind = draw(
        st.sampled_from(
            [
                "empty",
                "too-many",
                "same-name",
                "two-kinds",
                "no-kind",
                "decreasing",
                "mirror-last",
                "match-mirror",
                "hold",
            ]
        )
    )
    if kind == "empty":
        spec["stages"] = []
    elif kind == "too-many":
        spec["stages"] = [{"name": f"s{i}", "weight": min(100, i)} for i in range(33)]
    elif kind == "same-name":
        stages.append({**copy.deepcopy(stages[-1])})
    elif kind == "two-kinds":
        stages[0] = {"name": "both", "smoke": {}, "weight": 10}
    elif kind == "no-kind":
        stages.insert(0, {"name": "nothing"})
    elif kind == "decreasing":
        stages.extend([{"name": "w-60", "weight": 60}, {"name": "w-40", "weight": 40}])
    elif kind == "mirror-last":
        stages.append({"name": "late-shadow", "mirror": 50})
    elif kind == "match-mirror":
        stages.insert(0, {"name": "shadow-ab", "mirror": 10, "match": [{"headers": {"x-cohort": "b"}}]})
    else:
        names = [s.get("name") for s in stages if isinstance(s, dict) and isinstance(s.get("name"), str)]
        spec["holdAt"] = draw(st.sampled_from([*names, "missing", ""]))
        log.append(f"spec.holdAt: {spec['holdAt']!r}")
        return
    log.append(f"spec.stages: {kind}")


def _seed(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((REPO / "examples" / "digits" / name).read_text())
    return manifest


def seeds() -> list[dict[str, Any]]:
    """Valid manifests to start from: the two examples, each router, each metric kind, an A/B stage."""
    minimal, full = _seed("minimal.yaml"), _seed("full.yaml")
    gateway = copy.deepcopy(full)
    gateway["spec"]["traffic"] = {"router": "gatewayApi", "gatewayApi": {"httpRoute": "digits"}}
    istio = copy.deepcopy(full)
    istio["spec"]["traffic"] = {"router": "istio", "istio": {"virtualService": "digits"}}
    # Only the full example names its own Prometheus: the operator's default
    # policy refuses other addresses, which would stop most releases there.
    for seed in (gateway, istio):
        del seed["spec"]["analysis"]["prometheus"]
    quality = copy.deepcopy(minimal)
    quality["spec"]["stages"] = [{"name": "canary", "weight": 20, "duration": "30s"}, {"name": "full", "weight": 100}]
    quality["spec"]["analysis"] = {
        "interval": "2s",
        "metrics": [
            {"name": "f1-3", "template": "f1", "positiveClass": "3", "min": 0.5},
            {"name": "mae", "template": "mae", "max": 0.3},
            {"name": "precision", "template": "precision", "positiveClass": "cat:1", "min": 0.5},
            {"name": "q", "query": 'sum(rate(x_total{model="{{model}}"}[{{interval}}]))', "max": 1},
        ],
    }
    return [minimal, full, gateway, istio, quality]


SEEDS = seeds()


ENGINE_SENSITIVE: tuple[str, ...] = (
    "\n",
    "\r\n",
    "\t",
    "\x0b",
    "\x00",
    "\x1c",
    "\x7f",
    "\x85",
    "\u00a0",
    "\u2028",
    "\u3000",
)
"""Characters Python (``re``, ``str.strip``) and the API server (Go, RE2) may read differently."""

WRONG_TYPE_PROBES: tuple[tuple[tuple[PathPart, ...], Any], ...] = (
    (("serving", "replicas"), "3"),
    (("serving", "replicas"), 3.0),
    (("serving", "replicas"), 3.5),
    (("serving", "replicas"), True),
    (("model", "version"), 2**63 - 1),
    (("model", "version"), 2**63),
    (("paused",), "true"),
    (("paused",), 1),
    (("rollback", "automatic"), "false"),
    (("serving", "args"), ["--model_name\n"]),
    (("serving", "args"), ["--port"]),
    (("serving", "replicas"), None),
    (("stages", 0, "smoke", "minAccuracy"), 1),
    (("stages", 0, "smoke", "minAccuracy"), "0.5"),
)
"""Type coercions and edge numbers: the API server reads JSON strictly, pydantic's lax mode does not."""


def probe_cases() -> list[FuzzCase]:
    """Deterministic single changes to the full example: each string rule meets each engine-sensitive
    character (appended to its valid value), and each type coercion in WRONG_TYPE_PROBES."""
    full = SEEDS[1]
    cases: list[FuzzCase] = []
    seen: set[str] = set()
    for path, shape in string_leaves(full["spec"], SPEC_SHAPE):
        rule = repr(shape.text) if shape.text is not None else f"{shape.choices}{shape.max_length}"
        if rule in seen:
            continue
        seen.add(rule)
        for char in ENGINE_SENSITIVE:
            manifest = copy.deepcopy(full)
            target: Any = manifest["spec"]
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = target[path[-1]] + char
            cases.append(FuzzCase(manifest, [f"{dotted(path)}: valid value + {char!r}"]))
    for path, value in WRONG_TYPE_PROBES:
        manifest = copy.deepcopy(full)
        _set(manifest["spec"], path, value)
        cases.append(FuzzCase(manifest, [f"{dotted(path)}: {value!r}"]))
    return cases


@st.composite
def fuzz_cases(draw: Draw, max_mutations: int = 3) -> FuzzCase:
    """A seed manifest changed in 1..max_mutations places (or swept: every string at once)."""
    manifest = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    manifest["apiVersion"] = API_VERSION
    manifest["kind"] = "ModelRelease"
    case = FuzzCase(manifest)
    spec = manifest["spec"]
    style = draw(st.sampled_from(["mutate"] * 4 + ["gentle"] * 3 + ["sweep-valid", "sweep-any", "stages"]))
    if style == "sweep-valid":
        _sweep_strings(spec, draw, case.mutations, valid=True)
    elif style == "sweep-any":
        _sweep_strings(spec, draw, case.mutations, valid=False)
    elif style == "stages":
        _stage_oddity(spec, draw, case.mutations)
    else:
        for _ in range(draw(st.integers(1, max_mutations))):
            manifest["spec"] = _mutate(manifest["spec"], SPEC_SHAPE, draw, (), case.mutations, style == "gentle")
    return case
