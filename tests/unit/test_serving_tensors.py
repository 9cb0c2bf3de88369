"""TensorProtos are packed and read the way TF Serving does, without TensorFlow."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrelease.serving.stubs import tensor_pb2, types_pb2
from modelrelease.serving.tensors import TensorDecodeError, float_matrix, shape_of, values_of

finite_floats = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(
    st.integers(1, 5).flatmap(
        lambda width: st.lists(st.lists(finite_floats, min_size=width, max_size=width), min_size=1, max_size=6)
    )
)
def test_a_float_matrix_round_trips_with_its_shape(rows: list[list[float]]) -> None:
    proto = float_matrix(rows)
    assert proto.dtype == types_pb2.DT_FLOAT
    assert shape_of(proto) == [len(rows), len(rows[0])]
    assert values_of(proto) == [value for row in rows for value in row]


def test_packed_content_is_little_endian_float32() -> None:
    assert float_matrix([[1.0, -2.5]]).tensor_content == struct.pack("<2f", 1.0, -2.5)


def test_int64_classes_are_read_from_packed_content_and_from_the_typed_field() -> None:
    packed = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_content=struct.pack("<3q", 3, 7, 1))
    packed.tensor_shape.dim.add(size=3)
    typed = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, int64_val=[3, 7, 1])
    typed.tensor_shape.dim.add(size=3)
    assert values_of(packed) == values_of(typed) == [3, 7, 1]


def test_a_short_typed_field_repeats_its_last_value_like_tensorflow() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, int_val=[4])
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=2)
    assert values_of(proto) == [4, 4, 4, 4]


def test_string_outputs_are_decoded() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"cat", b"dog"])
    proto.tensor_shape.dim.add(size=2)
    assert values_of(proto) == ["cat", "dog"]


def test_content_of_the_wrong_length_is_refused() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_content=struct.pack("<2q", 1, 2))
    proto.tensor_shape.dim.add(size=3)
    with pytest.raises(TensorDecodeError, match="expected 24"):
        values_of(proto)


def test_an_unsupported_dtype_is_named() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64)
    proto.tensor_shape.dim.add(size=1)
    with pytest.raises(TensorDecodeError, match="DT_COMPLEX64"):
        values_of(proto)
