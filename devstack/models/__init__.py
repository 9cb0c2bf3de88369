"""Real SavedModels for devstack, trained at setup time on scikit-learn's digits.

Layout under ``models_root()`` (``<cache>/models``, which the pod runner mounts at ``/models``)::

    digits/1/  saved_model.pb  variables/  metrics.json    good
    digits/2/  ...                                         better
    digits/3/  ...                                         clearly worse
    digits/4/  saved_model.pb (truncated)  metrics.json    fails to load
    digits/5/  ...                                         a few points below v2
    digits-golden.yaml                                     ConfigMap ``digits-golden``
    RECIPE                                                 hash of the recipe that built all this

``metrics.json`` sits inside each version directory (TF Serving ignores files
it does not know there): ``{"model", "version", "accuracy", "holdout_examples",
"loadable", ...}``; accuracy is measured on the held-out split through the
exported ``serving_default`` signature, and is null for the corrupt version.

Training runs in a child process (``python -m devstack.models build``) so that
the caller never imports TensorFlow; a warm call costs a hash and a few stats.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

import devstack
from devstack.models import golden, recipe

MODEL_NAME = recipe.MODEL_NAME
RECIPE_FILE = "RECIPE"
GOLDEN_MANIFEST = f"{recipe.MODEL_NAME}-golden.yaml"
_RECIPE_SOURCES = ("recipe.py", "train.py", "golden.py")
_RECIPE_PACKAGES = ("tensorflow", "keras", "numpy", "scikit-learn", "protobuf", "pyyaml")


def models_root() -> Path:
    return devstack.cache_root() / "models"


def recipe_hash() -> str:
    """Hash of everything that decides the bytes written: training sources, version table, library versions."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _RECIPE_SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    for package in _RECIPE_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{package}=={importlib.metadata.version(package)}\0".encode())
    return digest.hexdigest()[:16]


def version_dir(version: int, root: Path | None = None) -> Path:
    return (root or models_root()) / MODEL_NAME / str(version)


def read_metrics(version: int, root: Path | None = None) -> dict[str, object]:
    result: dict[str, object] = json.loads((version_dir(version, root) / "metrics.json").read_text())
    return result


def load_holdout() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Held-out inputs (float32 ``[N, 64]``, pixel/16) and labels, never trained on; same order every call."""
    return recipe.holdout_split()


def _is_current(root: Path, expected: str) -> bool:
    marker = root / RECIPE_FILE
    if not marker.is_file() or marker.read_text().strip() != expected:
        return False
    needed = [root / GOLDEN_MANIFEST] + [version_dir(v, root) / "metrics.json" for v in recipe.VERSIONS]
    return all(path.is_file() for path in needed)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise builds between processes (several test sessions may call setup at once)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_models(force: bool = False) -> Path:
    """Train and export every version unless the cache already holds this recipe's; return the models root."""
    root = models_root()
    expected = recipe_hash()
    if not force and _is_current(root, expected):
        return root
    with _exclusive(root.parent / "models.lock"):
        if not force and _is_current(root, expected):
            return root
        staging = root.parent / f"models.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        subprocess.run(
            [sys.executable, "-m", "devstack.models", "build", "--output", str(staging)], check=True, env=env
        )
        golden.write_manifest(staging / GOLDEN_MANIFEST)
        (staging / RECIPE_FILE).write_text(expected + "\n")
        if root.exists():
            stale = root.parent / f"models.stale-{os.getpid()}"
            root.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        staging.rename(root)
        print(
            f"devstack.models: trained and exported {len(recipe.VERSIONS)} versions in {time.monotonic() - started:.1f} s"
        )
    return root
