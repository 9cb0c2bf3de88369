"""The TF Serving stubs load without TensorFlow, and the vendored descriptor modules are the right set."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelrelease.serving import _tfprotos

VENDORED = Path(_tfprotos.__file__).parent

# Runs in a fresh interpreter where "tensorflow" cannot be imported at all, as in the operator's image.
_WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name == "tensorflow.core" or name == "tensorflow.python":
                raise ModuleNotFoundError(f"blocked: {name}", name=name)
            return None

    sys.meta_path.insert(0, NoTensorFlow())
    """
)


def run_without_tensorflow(body: str) -> dict[str, object]:
    script = _WITHOUT_TENSORFLOW + textwrap.dedent(body)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_stubs_load_with_tensorflow_unimportable_and_never_import_its_package() -> None:
    seen = run_without_tensorflow(
        """
        import modelrelease.serving as serving
        from modelrelease.serving import stubs
        request = stubs.predict_pb2.PredictRequest()
        request.inputs["pixels"].dtype = stubs.types_pb2.DT_FLOAT
        round_trip = stubs.predict_pb2.PredictRequest.FromString(request.SerializeToString())
        tf_modules = {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.split(".")[0] == "tensorflow"}
        print(json.dumps({
            "tensorflow_imported": "tensorflow" in sys.modules or "tensorflow.core" in sys.modules,
            "tf_modules": tf_modules,
            "has_model_service": hasattr(stubs.model_service_pb2_grpc, "ModelServiceStub"),
            "has_prediction_service": hasattr(stubs.prediction_service_pb2_grpc, "PredictionServiceStub"),
            "round_trip_dtype": round_trip.inputs["pixels"].dtype,
            "dt_float": stubs.types_pb2.DT_FLOAT,
        }))
        """
    )
    assert seen["tensorflow_imported"] is False
    tf_modules = seen["tf_modules"]
    assert isinstance(tf_modules, dict)
    assert "tensorflow.core.framework.tensor_pb2" in tf_modules
    # Only leaf modules remain, all from the vendored copy; the stand-in packages are gone again.
    assert all(str(path).startswith(str(VENDORED)) for path in tf_modules.values()), tf_modules
    assert not any(name in tf_modules for name in _tfprotos.STAND_IN_PACKAGES)
    assert seen["has_model_service"] is True
    assert seen["has_prediction_service"] is True
    assert seen["round_trip_dtype"] == seen["dt_float"] == 1


def test_a_descriptor_module_that_is_not_vendored_fails_with_a_hint_not_a_tensorflow_import() -> None:
    seen = run_without_tensorflow(
        """
        from modelrelease.serving import stubs
        stubs._install_stand_ins()
        try:
            from tensorflow.core.framework import summary_pb2
            outcome = "imported"
        except ImportError as error:
            outcome = str(error)
        print(json.dumps({"outcome": outcome, "tensorflow_imported": "tensorflow" in sys.modules}))
        """
    )
    assert "not vendored" in str(seen["outcome"])
    assert "regenerate" in str(seen["outcome"])
    assert seen["tensorflow_imported"] is False


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow's files to compare with")
def test_vendored_modules_are_exactly_the_import_closure_of_the_stubs_and_unchanged_below_the_header() -> None:
    from modelrelease.serving._tfprotos import regenerate

    closure = regenerate.tensorflow_closure()
    vendored = sorted(str(path.relative_to(VENDORED)) for path in VENDORED.glob("tensorflow/**/*_pb2.py"))
    assert vendored == closure
    packages = sorted({path.rsplit("/", 1)[0].replace("/", ".") for path in closure})
    assert tuple(packages) == _tfprotos.STAND_IN_PACKAGES
    source_root = regenerate._package_root("tensorflow")
    for relative in closure:
        text = (VENDORED / relative).read_text()
        assert "Licensed under the Apache License" in text
        assert text.endswith((source_root / relative).read_text())
