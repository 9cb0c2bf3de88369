"""Train the digits versions and export them as SavedModels that TF Serving itself could load.

Keras trains (it is the shortest deterministic path to a decent MLP); the
export is a plain ``tf.Module`` holding the learned weights as variables, so a
server needs nothing but TensorFlow's core to load it.  Two signatures:

- ``serving_default`` (method tensorflow/serving/predict): ``pixels`` float32
  ``[None, 64]`` -> ``classes`` int64 ``[None]``, ``scores`` float32 ``[None, 10]``.
- ``classify`` (method tensorflow/serving/classify): ``inputs`` serialized
  tf.Example strings with a 64-float feature ``pixels`` -> ``classes`` string
  ``[None, 10]`` (the labels "0".."9") and ``scores``, as TF Serving's Classify
  API requires.  ``tf.saved_model.save`` always writes the predict method name,
  so the exported saved_model.pb is patched afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from devstack.models import recipe

CLASSIFY_METHOD = "tensorflow/serving/classify"
CLASSIFY_SIGNATURE = "classify"


def _configure_tensorflow() -> Any:
    """Import TensorFlow single-threaded and deterministic, before any op runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    return tf


def train_weights(spec: recipe.TrainSpec) -> list[npt.NDArray[np.float32]]:
    """Return [kernel1, bias1, kernel2, bias2] of a 64-hidden-10 MLP trained as ``spec`` says."""
    tf = _configure_tensorflow()
    inputs, labels = recipe.training_split()
    if spec.train_samples is not None:
        inputs, labels = inputs[: spec.train_samples], labels[: spec.train_samples]
    labels = recipe.noisy_labels(labels, spec.label_noise, spec.seed)

    tf.keras.utils.set_random_seed(spec.seed)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(recipe.NUM_FEATURES,)),
            tf.keras.layers.Dense(spec.hidden, activation="relu"),
            tf.keras.layers.Dense(recipe.NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(inputs, labels, epochs=spec.epochs, batch_size=32, shuffle=True, verbose=0)
    return [np.asarray(w, dtype=np.float32) for w in model.get_weights()]


def build_module(weights: list[npt.NDArray[np.float32]]) -> Any:
    tf = _configure_tensorflow()
    kernel1, bias1, kernel2, bias2 = weights
    labels = tf.constant([[str(c).encode() for c in range(recipe.NUM_CLASSES)]])

    class DigitsClassifier(tf.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(name="digits")
            self.kernel1 = tf.Variable(kernel1, name="hidden/kernel")
            self.bias1 = tf.Variable(bias1, name="hidden/bias")
            self.kernel2 = tf.Variable(kernel2, name="logits/kernel")
            self.bias2 = tf.Variable(bias2, name="logits/bias")

        def scores(self, pixels: Any) -> Any:
            hidden = tf.nn.relu(tf.matmul(pixels, self.kernel1) + self.bias1)
            return tf.nn.softmax(tf.matmul(hidden, self.kernel2) + self.bias2, name="scores")

        @tf.function(input_signature=[tf.TensorSpec([None, recipe.NUM_FEATURES], tf.float32, name=recipe.INPUT_NAME)])
        def predict(self, pixels: Any) -> dict[str, Any]:
            scores = self.scores(pixels)
            return {"classes": tf.argmax(scores, axis=1, output_type=tf.int64), "scores": scores}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs: Any) -> dict[str, Any]:
            features = tf.io.parse_example(
                inputs, {recipe.INPUT_NAME: tf.io.FixedLenFeature([recipe.NUM_FEATURES], tf.float32)}
            )
            scores = self.scores(features[recipe.INPUT_NAME])
            classes = tf.tile(labels, [tf.shape(scores)[0], 1])
            return {"classes": classes, "scores": scores}

    return DigitsClassifier()


def export(weights: list[npt.NDArray[np.float32]], directory: Path) -> None:
    tf = _configure_tensorflow()
    module = build_module(weights)
    tf.saved_model.save(
        module,
        str(directory),
        signatures={"serving_default": module.predict, CLASSIFY_SIGNATURE: module.classify},
    )
    mark_classify_method(directory / "saved_model.pb")


def mark_classify_method(saved_model_pb: Path) -> None:
    """Give the ``classify`` signature TF Serving's classify method name (TF2 export cannot)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(saved_model_pb.read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if CLASSIFY_SIGNATURE in meta_graph.signature_def:
            meta_graph.signature_def[CLASSIFY_SIGNATURE].method_name = CLASSIFY_METHOD
    saved_model_pb.write_bytes(saved_model.SerializeToString(deterministic=True))


def corrupt_copy(source: Path, target: Path) -> None:
    """Copy a version and cut its saved_model.pb where protobuf parsing fails, as a torn upload would."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target)
    (target / "metrics.json").unlink(missing_ok=True)
    pb = target / "saved_model.pb"
    data = pb.read_bytes()
    for cut in range(len(data) // 2, 0, -1):
        try:
            saved_model_pb2.SavedModel().ParseFromString(data[:cut])
        except Exception:  # DecodeError: this prefix is a torn message
            pb.write_bytes(data[:cut])
            return
    raise RuntimeError(f"could not find a truncation of {pb} that fails to parse")


def accuracy_of(directory: Path) -> float:
    """Held-out accuracy measured through the exported signature, the way a server would call it."""
    tf = _configure_tensorflow()
    inputs, labels = recipe.holdout_split()
    serve = tf.saved_model.load(str(directory)).signatures["serving_default"]
    predicted = serve(pixels=tf.constant(inputs))["classes"].numpy()
    return float(np.mean(predicted == labels))


def write_metrics(directory: Path, version: int, spec: recipe.VersionSpec, accuracy: float | None) -> None:
    holdout_size = recipe.HOLDOUT_SIZE
    body: dict[str, Any] = {
        "model": recipe.MODEL_NAME,
        "version": version,
        "accuracy": accuracy,
        "holdout_examples": holdout_size,
        "loadable": accuracy is not None,
        "recipe": spec.__class__.__name__,
        "spec": spec.__dict__,
    }
    (directory / "metrics.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def build_all(root: Path) -> dict[int, float | None]:
    """Train, export and measure every version into ``root/<model>/<version>``; return the accuracies."""
    base = root / recipe.MODEL_NAME
    base.mkdir(parents=True, exist_ok=True)
    accuracies: dict[int, float | None] = {}
    for version, spec in sorted(recipe.VERSIONS.items(), key=lambda item: isinstance(item[1], recipe.CorruptSpec)):
        directory = base / str(version)
        if isinstance(spec, recipe.CorruptSpec):
            corrupt_copy(base / str(spec.source), directory)
            write_metrics(directory, version, spec, None)
            accuracies[version] = None
            continue
        export(train_weights(spec), directory)
        accuracies[version] = accuracy_of(directory)
        write_metrics(directory, version, spec, accuracies[version])
    return dict(sorted(accuracies.items()))
