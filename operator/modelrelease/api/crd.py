"""Generate the ModelRelease CustomResourceDefinition from the pydantic models.

``python -m modelrelease.api.crd crds/`` (``make crds``) writes
``crds/modelreleases.modelrelease.io.yaml``. pydantic's JSON schema is not
what the API server accepts, so it is rewritten into a *structural* schema:
every ``$ref`` inlined, ``Optional[X]`` (``anyOf: [X, null]``) turned into
plain ``X`` (the API server drops nulls of non-nullable fields, which is what
"unset" means here), every object typed, free-form dicts marked
``x-kubernetes-preserve-unknown-fields``, and ``default_factory`` values
written out as ``default`` so ``kubectl get -o yaml`` shows what will run.
The output is deterministic (sorted keys, block style) so the sync test can
compare it byte for byte.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import PydanticUndefined, core_schema

from modelrelease import GROUP, KIND, PLURAL, VERSION
from modelrelease.api.resource import RELEASE_NAME_RULE
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.api.status import ModelReleaseStatus

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILENAME = f"{CRD_NAME}.yaml"
SHORT_NAMES = ["mr", "mrel"]
HEADER = (
    "# Generated from operator/modelrelease/api by `make crds`; do not edit.\n"
    "# A test fails when this file differs from what the models generate.\n"
)

JsonSchema = dict[str, Any]


class _WithFactoryDefaults(GenerateJsonSchema):
    """pydantic leaves ``default_factory`` values out of the schema; the CRD needs them as ``default``."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        default = schema.get("default", NoDefault)
        return NoDefault if default is PydanticUndefined else default


def _model_schema(model: Any) -> JsonSchema:
    schema: JsonSchema = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults
    )
    return schema


def _without_nulls(value: Any) -> Any:
    """Defaults as a user would write them: unset optional fields are absent, not null."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _description(text: str) -> str:
    """Docstrings read well in ``kubectl explain`` once reST markup and hard wraps are gone."""
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text.replace("``", ""))]
    return "\n\n".join(part for part in paragraphs if part)


def _merge(base: JsonSchema, extra: JsonSchema) -> JsonSchema:
    merged = dict(base)
    for key, value in extra.items():
        if key == "x-kubernetes-validations" and key in merged:
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


class _Structural:
    """Rewrites one pydantic JSON schema into the structural form the API server requires."""

    def __init__(self, definitions: dict[str, JsonSchema], keep_defaults: bool) -> None:
        self.definitions = definitions
        self.keep_defaults = keep_defaults

    def convert(self, node: JsonSchema) -> JsonSchema:
        node = self._resolve(node)
        out: JsonSchema = {}
        for key, value in node.items():
            if key in ("title", "propertyNames", "$defs"):
                continue
            if key == "additionalProperties":
                if value is True:
                    out["x-kubernetes-preserve-unknown-fields"] = True
                elif isinstance(value, dict):
                    out[key] = self.convert(value)
                continue
            if key == "properties":
                out[key] = {name: self.convert(child) for name, child in value.items()}
            elif key == "items":
                out[key] = self.convert(value)
            elif key == "default":
                if self.keep_defaults and value is not None:
                    out[key] = _without_nulls(value)
            elif key == "description":
                out[key] = _description(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
                out[key] = True
            else:
                out[key] = value
        if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if out.get("type") == "object" and not out.get("required"):
            out.pop("required", None)
        return out

    def _resolve(self, node: JsonSchema) -> JsonSchema:
        """Inline ``$ref`` and collapse ``anyOf: [X, null]`` into X, keeping the field's own keys."""
        while True:
            if "$ref" in node:
                target = self.definitions[node["$ref"].rsplit("/", 1)[-1]]
                rest = {key: value for key, value in node.items() if key != "$ref"}
                node = _merge(target, rest)
                continue
            variants = node.get("anyOf")
            if variants is not None:
                non_null = [variant for variant in variants if variant != {"type": "null"}]
                if len(non_null) != 1:
                    raise ValueError(f"cannot express anyOf {variants} in a structural schema")
                rest = {key: value for key, value in node.items() if key != "anyOf"}
                node = _merge(self._resolve(non_null[0]), rest)
                continue
            return node


def _structural(model: Any, keep_defaults: bool) -> JsonSchema:
    schema = _model_schema(model)
    return _Structural(schema.get("$defs", {}), keep_defaults).convert(schema)


def open_api_schema() -> JsonSchema:
    """The ``openAPIV3Schema`` of the one served version."""
    return {
        "type": "object",
        "description": "A staged rollout of a TensorFlow Serving model version, judged from Prometheus.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            # Status is written only by the operator: no defaults, so the API
            # server never invents state the operator did not record.
            "spec": _structural(ModelReleaseSpec, keep_defaults=True),
            "status": _structural(ModelReleaseStatus, keep_defaults=False),
        },
        "x-kubernetes-validations": [RELEASE_NAME_RULE],
    }


def printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Stable", "type": "integer", "jsonPath": ".status.stableVersion"},
        {"name": "Candidate", "type": "integer", "jsonPath": ".status.candidateVersion"},
        {"name": "Stage", "type": "string", "jsonPath": ".status.stage.name"},
        {
            "name": "Weight",
            "type": "integer",
            "jsonPath": ".status.stage.actualWeight",
            "description": "Percent of traffic the router reports the candidate actually gets.",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "modelrelease-operator"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": open_api_schema()},
                }
            ],
        },
    }


class _BlockDumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings as ``|`` blocks so descriptions stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def render_crd() -> str:
    body = yaml.dump(crd_manifest(), Dumper=_BlockDumper, sort_keys=True, default_flow_style=False, width=100_000)
    return HEADER + body


def write_crds(directory: Path) -> Path:
    """Write the CRD into ``directory``, touching the file only when its content changes."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CRD_FILENAME
    text = render_crd()
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def main(argv: list[str], out: Callable[[str], object] = print) -> int:
    if len(argv) != 1:
        out("usage: python -m modelrelease.api.crd <output directory>   (e.g. crds/)")
        return 2
    out(str(write_crds(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
