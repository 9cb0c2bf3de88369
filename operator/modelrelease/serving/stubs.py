"""The TF Serving gRPC stubs, loaded without TensorFlow.

Why this module exists: ``tensorflow_serving.apis`` is plain protobuf/gRPC
code, but its generated modules import ``tensorflow.core.framework.tensor_pb2``
and a few other TensorFlow descriptor modules.  Importing those the ordinary
way imports the ``tensorflow`` package first, and TensorFlow's ``__init__``
loads the whole runtime: measured at 591 MB RSS and 3.2 s for
``import tensorflow_serving.apis...`` in the dev venv, versus tens of MB and
about 0.1 s this way (``python -m modelrelease.serving.bench`` prints the
numbers).  The operator's image does not install TensorFlow at all.

How: the descriptor modules the stubs reach are vendored verbatim in
``_tfprotos/``.  Before the stubs are imported, stand-in package objects for
``tensorflow.core.framework`` (and the three other packages involved) are put
in ``sys.modules`` with ``__path__`` pointing at the vendored directories, so
``from tensorflow.core.framework import tensor_pb2`` finds the package without
importing ``tensorflow`` or ``tensorflow.core`` (Python only imports parents of
a name that is not already in ``sys.modules``).  Once the stubs are loaded the
stand-ins are removed again: a process that imports real TensorFlow later (the
dev venv's tests) then gets TensorFlow's own packages, and the leaf modules
left behind are the same generated code for the same ``.proto`` files, so
TensorFlow reuses them.  If real TensorFlow is already imported, the stubs are
imported the ordinary way, which costs nothing more by then.

Only this module touches ``tensorflow_serving``; everything else in the
operator imports the names below from here.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelrelease.serving._tfprotos import STAND_IN_PACKAGES, STUB_MODULES

_VENDORED_ROOT = Path(__file__).resolve().parent / "_tfprotos"


def _install_stand_ins() -> list[str]:
    """Register a stand-in for each vendored package that is not in ``sys.modules`` yet."""
    installed = []
    for name in STAND_IN_PACKAGES:
        if name in sys.modules:
            continue
        package = types.ModuleType(name, "Stand-in for TensorFlow's package of generated protobuf modules.")
        package.__path__ = [str(_VENDORED_ROOT.joinpath(*name.split(".")))]
        package.__package__ = name
        package.__getattr__ = _submodule_loader(name)  # type: ignore[method-assign]
        sys.modules[name] = package
        installed.append(name)
    return installed


def _submodule_loader(package: str) -> Callable[[str], types.ModuleType]:
    """A module ``__getattr__`` (PEP 562) that imports vendored submodules on first access.

    Why: ``from tensorflow.core.framework import tensor_pb2`` checks the
    package for the attribute first; when it is missing, Python falls back to
    ``__import__("tensorflow.core.framework.tensor_pb2")``, which also imports
    the top-level ``tensorflow`` package (the thing this module avoids).
    Answering the attribute lookup here keeps the import inside the stand-in.
    """

    def load_submodule(attribute: str) -> types.ModuleType:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        name = f"{package}.{attribute}"
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as missing:
            if missing.name != name:
                raise
            raise ImportError(
                f"{name} is not vendored in modelrelease/serving/_tfprotos; "
                "run python -m modelrelease.serving._tfprotos.regenerate"
            ) from missing

    return load_submodule


def _load_all() -> dict[str, Any]:
    if "tensorflow" in sys.modules:
        return {name: importlib.import_module(name) for name in STUB_MODULES}
    stand_ins = _install_stand_ins()
    try:
        return {name: importlib.import_module(name) for name in STUB_MODULES}
    finally:
        for name in stand_ins:
            del sys.modules[name]


_modules = _load_all()

model_pb2: Any = _modules["tensorflow_serving.apis.model_pb2"]
get_model_status_pb2: Any = _modules["tensorflow_serving.apis.get_model_status_pb2"]
predict_pb2: Any = _modules["tensorflow_serving.apis.predict_pb2"]
model_service_pb2_grpc: Any = _modules["tensorflow_serving.apis.model_service_pb2_grpc"]
prediction_service_pb2_grpc: Any = _modules["tensorflow_serving.apis.prediction_service_pb2_grpc"]
tensor_pb2: Any = sys.modules["tensorflow.core.framework.tensor_pb2"]
types_pb2: Any = sys.modules["tensorflow.core.framework.types_pb2"]

__all__ = [
    "get_model_status_pb2",
    "model_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_service_pb2_grpc",
    "tensor_pb2",
    "types_pb2",
]
