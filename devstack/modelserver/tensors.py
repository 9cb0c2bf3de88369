"""TensorProto <-> NumPy for the gRPC API, with TF Serving's error for a proto that does not parse."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from devstack.modelserver.status import invalid_argument

# A TensorProto may claim any shape with no values behind it; never allocate more than this.
MAX_ELEMENTS = 1 << 24


def to_array(alias: str, proto: Any) -> npt.NDArray[Any]:
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_ELEMENTS:
        raise invalid_argument(f"tensor parsing error: {alias}")
    try:
        array = tf.make_ndarray(proto)
    except Exception:
        raise invalid_argument(f"tensor parsing error: {alias}") from None
    if array.dtype.kind == "S":  # make_ndarray returns fixed-width bytes for DT_STRING
        holder = np.empty(array.shape, dtype=object)
        holder[...] = array.tolist() if array.ndim else array.item()
        return holder
    return np.asarray(array)


def to_proto(array: npt.NDArray[Any]) -> Any:
    return tf.make_tensor_proto(array)
