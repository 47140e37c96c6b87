"""Tensors on the wire: round trips, chunking under the message limit, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from kinetoscope import tensors
from kinetoscope.v1 import kinetoscope_pb2 as pb


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_round_trip(dtype: str) -> None:
    array = (np.random.default_rng(0).normal(size=(2, 3, 4)) * 10).astype(dtype)
    back = tensors.from_tensor(tensors.to_tensor(array))
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_chunks_stay_under_the_limit_and_reassemble() -> None:
    array = np.random.default_rng(1).normal(size=(3, 1000, 1000)).astype(np.float32)  # 12 MB
    chunks = list(tensors.to_chunks("flow", array))
    assert len(chunks) == 12 and max(c.ByteSize() for c in chunks) <= 1 << 20
    assert np.array_equal(tensors.assemble(chunks)["flow"], array)


def test_out_of_order_chunks_are_refused() -> None:
    chunks = list(tensors.to_chunks("x", np.zeros(1000, np.float32), chunk_bytes=1000))
    with pytest.raises(tensors.WireError, match="chunks come in order"):
        tensors.assemble([chunks[1], chunks[0]])


def test_inconsistent_tensor_is_refused() -> None:
    with pytest.raises(tensors.WireError, match="takes 24 bytes, but 8 were given"):
        tensors.from_tensor(pb.Tensor(shape=[2, 3], dtype="float32", data=b"\0" * 8))
    with pytest.raises(tensors.WireError, match="is not one of"):
        tensors.from_tensor(pb.Tensor(shape=[1], dtype="object", data=b"\0" * 8))
