"""What each model version is trained on, and the held-out split every number is measured on.

This module imports neither TensorFlow nor anything slow, so the traffic
generator and the tests can read the held-out split and the version table
without paying for a TensorFlow start.  Everything that decides the trained
weights lives here or in ``train.py``; both files are part of the recipe hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MODEL_NAME = "digits"
INPUT_NAME = "pixels"
NUM_FEATURES = 64
NUM_CLASSES = 10
# Digits pixels are integers 0..16; the served input is pixel / 16 (exact in float32).
PIXEL_SCALE = 16.0

SPLIT_SEED = 20240611
HOLDOUT_SIZE = 600
GOLDEN_SIZE = 200


@dataclass(frozen=True)
class TrainSpec:
    """One trainable version.  The knobs are the ones that move accuracy in a predictable direction."""

    hidden: int
    epochs: int
    seed: int
    # Use only the first N training examples (None: all of them).
    train_samples: int | None = None
    # Fraction of the used training labels replaced by a different, wrong label.
    label_noise: float = 0.0
    learning_rate: float = 0.01


@dataclass(frozen=True)
class CorruptSpec:
    """A version directory that exists but cannot be loaded: a copy of ``source`` with saved_model.pb cut short."""

    source: int


VersionSpec = TrainSpec | CorruptSpec

# v1 good, v2 better, v3 clearly worse (little data, half of it mislabelled),
# v4 corrupt, v5 a few points below v2 (same network, a fraction of the data).
VERSIONS: dict[int, VersionSpec] = {
    1: TrainSpec(hidden=10, epochs=8, seed=1),
    2: TrainSpec(hidden=64, epochs=60, seed=2, learning_rate=0.005),
    3: TrainSpec(hidden=16, epochs=20, seed=3, train_samples=120, label_noise=0.5),
    4: CorruptSpec(source=2),
    5: TrainSpec(hidden=64, epochs=60, seed=5, train_samples=350, learning_rate=0.005),
}


def load_digits_scaled() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """All 1,797 digits as served: float32 ``[N, 64]`` in [0, 1] and int labels."""
    from sklearn.datasets import load_digits  # scikit-learn ships the data: no download

    digits = load_digits()
    inputs = (np.asarray(digits.data, dtype=np.float64) / PIXEL_SCALE).astype(np.float32)
    return inputs, np.asarray(digits.target, dtype=np.int64)


def split_indices(n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(train, holdout) indices.  RandomState, not default_rng: its stream is frozen across NumPy releases."""
    order = np.random.RandomState(SPLIT_SEED).permutation(n).astype(np.int64)
    return order[HOLDOUT_SIZE:], order[:HOLDOUT_SIZE]


def training_split() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    inputs, labels = load_digits_scaled()
    train, _ = split_indices(len(labels))
    return inputs[train], labels[train]


def holdout_split() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    inputs, labels = load_digits_scaled()
    _, holdout = split_indices(len(labels))
    return inputs[holdout], labels[holdout]


def noisy_labels(labels: npt.NDArray[np.int64], fraction: float, seed: int) -> npt.NDArray[np.int64]:
    """Replace ``fraction`` of the labels by a different class, deterministically."""
    if fraction <= 0:
        return labels.copy()
    rng = np.random.RandomState(seed)
    flipped = labels.copy()
    chosen = rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)
    # Adding 1..9 modulo 10 guarantees the new label is wrong.
    flipped[chosen] = (labels[chosen] + rng.randint(1, NUM_CLASSES, size=len(chosen))) % NUM_CLASSES
    return flipped
