"""The models' recipe, held-out split, golden set and cache check: everything that needs no TensorFlow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from devstack import models
from devstack.models import golden, recipe


def test_holdout_is_deterministic_and_disjoint_from_training() -> None:
    first_inputs, first_labels = models.load_holdout()
    again_inputs, again_labels = models.load_holdout()
    np.testing.assert_array_equal(first_inputs, again_inputs)
    np.testing.assert_array_equal(first_labels, again_labels)
    train, holdout = recipe.split_indices(1797)
    assert len(holdout) == recipe.HOLDOUT_SIZE
    assert not set(train.tolist()) & set(holdout.tolist())
    assert len(train) + len(holdout) == 1797


def test_holdout_is_served_input_shape_and_range() -> None:
    inputs, labels = models.load_holdout()
    assert inputs.dtype == np.float32 and inputs.shape == (recipe.HOLDOUT_SIZE, 64)
    assert inputs.min() >= 0.0 and inputs.max() <= 1.0
    assert set(labels.tolist()) == set(range(10))


def test_noisy_labels_change_exactly_the_fraction_and_always_to_a_wrong_class() -> None:
    labels = np.arange(200, dtype=np.int64) % 10
    noisy = recipe.noisy_labels(labels, 0.5, seed=3)
    changed = noisy != labels
    assert changed.sum() == 100
    assert ((noisy >= 0) & (noisy < 10)).all()
    np.testing.assert_array_equal(noisy, recipe.noisy_labels(labels, 0.5, seed=3))


def test_version_table_has_the_promised_roles() -> None:
    assert sorted(recipe.VERSIONS) == [1, 2, 3, 4, 5]
    assert isinstance(recipe.VERSIONS[4], recipe.CorruptSpec)
    worse = recipe.VERSIONS[3]
    assert isinstance(worse, recipe.TrainSpec) and worse.label_noise > 0


def test_golden_configmap_carries_the_contracted_document() -> None:
    manifest = yaml.safe_load(yaml.safe_dump(golden.configmap_manifest()))
    assert manifest["kind"] == "ConfigMap" and manifest["metadata"]["name"] == "digits-golden"
    document = json.loads(manifest["data"]["golden.json"])
    assert (document["model"], document["signature"], document["input"]) == ("digits", "serving_default", "pixels")
    assert len(document["instances"]) == len(document["labels"]) == recipe.GOLDEN_SIZE
    assert all(len(row) == 64 for row in document["instances"])
    inputs, labels = models.load_holdout()
    np.testing.assert_array_equal(np.asarray(document["instances"], np.float32), inputs[: recipe.GOLDEN_SIZE])
    assert document["labels"] == labels[: recipe.GOLDEN_SIZE].tolist()


def test_recipe_hash_is_stable() -> None:
    assert models.recipe_hash() == models.recipe_hash()
    assert len(models.recipe_hash()) == 16


def test_a_cache_built_for_this_recipe_is_reused_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELRELEASE_CACHE", str(tmp_path))
    root = tmp_path / "models"
    for version in recipe.VERSIONS:
        models.version_dir(version, root).mkdir(parents=True)
        (models.version_dir(version, root) / "metrics.json").write_text("{}")
    (root / models.GOLDEN_MANIFEST).write_text("")
    (root / models.RECIPE_FILE).write_text(models.recipe_hash() + "\n")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("ensure_models trained although the cache matches")

    monkeypatch.setattr(subprocess, "run", no_training)
    assert models.ensure_models() == root


def test_a_cache_from_another_recipe_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELRELEASE_CACHE", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / models.RECIPE_FILE).write_text("somethingelse\n")
    calls: list[list[str]] = []

    def fake_build(command: list[str], **kwargs: object) -> None:
        calls.append(command)
        output = Path(command[command.index("--output") + 1])
        for version in recipe.VERSIONS:
            models.version_dir(version, output).mkdir(parents=True)
            (models.version_dir(version, output) / "metrics.json").write_text("{}")

    monkeypatch.setattr(subprocess, "run", fake_build)
    root = models.ensure_models()
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "devstack.models", "build"]
    assert (root / models.RECIPE_FILE).read_text().strip() == models.recipe_hash()
    assert (root / models.GOLDEN_MANIFEST).is_file()
