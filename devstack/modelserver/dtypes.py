"""tensorflow.DataType enum values <-> NumPy dtypes and TensorFlow's dtype names, without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    enum: int
    name: str  # DataTypeString: what TF puts in error messages
    numpy: np.dtype[np.generic]


_TABLE = [
    DType(1, "float", np.dtype(np.float32)),
    DType(2, "double", np.dtype(np.float64)),
    DType(3, "int32", np.dtype(np.int32)),
    DType(4, "uint8", np.dtype(np.uint8)),
    DType(5, "int16", np.dtype(np.int16)),
    DType(6, "int8", np.dtype(np.int8)),
    DType(7, "string", np.dtype(np.object_)),
    DType(9, "int64", np.dtype(np.int64)),
    DType(10, "bool", np.dtype(np.bool_)),
    DType(17, "uint16", np.dtype(np.uint16)),
    DType(19, "half", np.dtype(np.float16)),
    DType(22, "uint32", np.dtype(np.uint32)),
    DType(23, "uint64", np.dtype(np.uint64)),
]
BY_ENUM = {d.enum: d for d in _TABLE}
BY_NUMPY = {d.numpy: d for d in _TABLE}

FLOAT = BY_ENUM[1]
STRING = BY_ENUM[7]


def from_enum(value: int) -> DType:
    found = BY_ENUM.get(value)
    if found is None:
        return DType(value, f"type{value}", np.dtype(np.object_))
    return found


def name_of_numpy(dtype: np.dtype[np.generic]) -> str:
    if dtype.kind in "SUO":
        return "string"
    found = BY_NUMPY.get(dtype)
    return found.name if found else str(dtype)
