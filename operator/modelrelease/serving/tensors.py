"""TensorProto encoding and decoding without TensorFlow or NumPy.

Why by hand: ``tf.make_tensor_proto`` / ``tf.make_ndarray`` would pull in
TensorFlow (see ``stubs``), and the operator only ever sends a float matrix
(the golden inputs) and reads back one small vector of classes, so the
packing rules fit in a few lines of ``struct``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

from modelrelease.serving.stubs import tensor_pb2, types_pb2

# dtype -> (struct format character, TensorProto repeated field used when tensor_content is empty)
_LAYOUTS: dict[int, tuple[str, str]] = {
    types_pb2.DT_FLOAT: ("f", "float_val"),
    types_pb2.DT_DOUBLE: ("d", "double_val"),
    types_pb2.DT_INT32: ("i", "int_val"),
    types_pb2.DT_INT64: ("q", "int64_val"),
    types_pb2.DT_INT16: ("h", "int_val"),
    types_pb2.DT_INT8: ("b", "int_val"),
    types_pb2.DT_UINT8: ("B", "int_val"),
    types_pb2.DT_BOOL: ("?", "bool_val"),
}


class TensorDecodeError(ValueError):
    """The server answered with a tensor this module cannot read."""


def float_matrix(rows: Sequence[Sequence[float]]) -> Any:
    """A DT_FLOAT TensorProto of shape [len(rows), len(rows[0])], packed little-endian as TF Serving expects."""
    width = len(rows[0]) if rows else 0
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=len(rows))
    proto.tensor_shape.dim.add(size=width)
    flat = [float(value) for row in rows for value in row]
    proto.tensor_content = struct.pack(f"<{len(flat)}f", *flat)
    return proto


def shape_of(proto: Any) -> list[int]:
    return [int(dim.size) for dim in proto.tensor_shape.dim]


def values_of(proto: Any) -> list[int | float | bool | str]:
    """The tensor's elements in row-major order, whichever encoding the server chose.

    Servers may send either packed ``tensor_content`` or the typed repeated
    field; in the latter, fewer values than elements means the last value
    repeats (TensorFlow's convention for constant tensors).
    """
    count = math.prod(shape_of(proto))
    if proto.dtype == types_pb2.DT_STRING:
        strings = [raw.decode("utf-8", errors="replace") for raw in proto.string_val]
        return _broadcast(strings, count)
    if proto.dtype not in _LAYOUTS:
        name = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() else proto.dtype
        raise TensorDecodeError(f"unsupported output dtype {name}")
    code, field = _LAYOUTS[proto.dtype]
    if proto.tensor_content:
        expected = count * struct.calcsize(f"<{code}")
        if len(proto.tensor_content) != expected:
            raise TensorDecodeError(f"tensor_content has {len(proto.tensor_content)} bytes, expected {expected}")
        return list(struct.unpack(f"<{count}{code}", proto.tensor_content))
    return _broadcast(list(getattr(proto, field)), count)


def _broadcast(values: list[Any], count: int) -> list[Any]:
    if len(values) == count:
        return values
    if not values and count:
        raise TensorDecodeError(f"tensor has no values for {count} elements")
    if len(values) > count:
        raise TensorDecodeError(f"tensor has {len(values)} values for {count} elements")
    return values + [values[-1]] * (count - len(values))
