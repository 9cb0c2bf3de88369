"""What the chart tests share: the cluster's own helm, rendering with values, finding objects in the output."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from devstack import build

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "modelrelease"
OPERATOR_NAMESPACE = "modelrelease-system"


def helm(*args: str, env: Mapping[str, str] | None = None, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    binary = build.bin_dir() / "helm"
    assert binary.exists(), f"{binary} is missing: run `make setup` (devstack.build builds helm)"
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env else None,
    )


def set_args(values: Mapping[str, Any]) -> list[str]:
    """``--set-json key=value`` for each value (lists and maps included)."""
    import json

    return [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


def render_text(values: Mapping[str, Any] = {}, extra: Sequence[str] = (), release: str = "mr") -> str:
    result = helm("template", release, str(CHART), "--namespace", OPERATOR_NAMESPACE, *set_args(values), *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(values: Mapping[str, Any] = {}, extra: Sequence[str] = (), release: str = "mr") -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_text(values, extra, release)) if doc]


def refusal(values: Mapping[str, Any]) -> str:
    """helm's error for values the chart must refuse (the test fails if they render)."""
    result = helm("template", "mr", str(CHART), *set_args(values))
    assert result.returncode != 0, f"{values} rendered; the schema should refuse them"
    return result.stderr


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", ())
        and resource in rule.get("resources", ())
        and (verb in rule.get("verbs", ()) or "*" in rule.get("verbs", ()))
        for rule in rules
    )
