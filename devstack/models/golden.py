"""The golden set as a ConfigMap manifest: what the operator's smoke stage predicts and scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from devstack.models import recipe

CONFIGMAP_NAME = f"{recipe.MODEL_NAME}-golden"
DATA_KEY = "golden.json"


def golden_document() -> dict[str, Any]:
    """The first GOLDEN_SIZE held-out examples; never seen in training, so smoke accuracy is honest."""
    inputs, labels = recipe.holdout_split()
    return {
        "model": recipe.MODEL_NAME,
        "signature": "serving_default",
        "input": recipe.INPUT_NAME,
        "instances": inputs[: recipe.GOLDEN_SIZE].tolist(),
        "labels": labels[: recipe.GOLDEN_SIZE].tolist(),
    }


def configmap_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "labels": {"app.kubernetes.io/name": recipe.MODEL_NAME, "modelrelease.io/golden-set": "true"},
        },
        "data": {DATA_KEY: json.dumps(golden_document(), separators=(",", ":"))},
    }


def write_manifest(path: Path) -> Path:
    path.write_text(yaml.safe_dump(configmap_manifest(), sort_keys=False, width=1 << 20))
    return path
