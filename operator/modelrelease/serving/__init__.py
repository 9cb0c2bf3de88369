"""TF Serving model status and smoke predictions over gRPC.

Importing this package loads the TF Serving stubs without TensorFlow (see
``modelrelease.serving.stubs`` for why and how).
"""

from modelrelease.serving.client import ModelLoadState, SmokeResult, code_name, model_status, run_smoke
from modelrelease.serving.golden import GOLDEN_KEY, GoldenSet, GoldenSetError

__all__ = [
    "GOLDEN_KEY",
    "GoldenSet",
    "GoldenSetError",
    "ModelLoadState",
    "SmokeResult",
    "code_name",
    "model_status",
    "run_smoke",
]
