"""numpy arrays ↔ kinetoscope.v1 Tensor and TensorChunk messages, shared by client and server.

Only numpy and the generated messages are imported here, so the client stays light.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from kinetoscope.v1 import kinetoscope_pb2 as pb

CHUNK_BYTES = 1 << 20
"""Payload per message: far below gRPC's 4 MB default, large enough to stream fast."""


def to_tensor(array: np.ndarray) -> pb.Tensor:
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return pb.Tensor(shape=list(array.shape), dtype=array.dtype.name, data=little.tobytes())


def from_tensor(tensor: pb.Tensor) -> np.ndarray:
    dtype = _dtype(tensor.dtype)
    array = np.frombuffer(tensor.data, dtype=dtype.newbyteorder("<"))
    expected = int(np.prod(tensor.shape)) if tensor.shape else 1
    if array.size != expected:
        raise ValueError(f"tensor data holds {array.size} values but its shape {list(tensor.shape)} needs {expected}")
    return array.reshape(tuple(tensor.shape)).astype(dtype)


def to_chunks(name: str, array: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pb.TensorChunk]:
    """Split an array into TensorChunks of at most `chunk_bytes` payload each."""
    array = np.ascontiguousarray(array)
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    total = len(data)
    for offset in range(0, max(total, 1), chunk_bytes):
        yield pb.TensorChunk(
            name=name, shape=list(array.shape), dtype=array.dtype.name, offset=offset,
            total_bytes=total, data=data[offset : offset + chunk_bytes],
        )


class ChunkAssembler:
    """Collects the chunks of one tensor, in order, and checks they add up."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.first: pb.TensorChunk | None = None
        self.parts: list[bytes] = []
        self.received = 0

    def add(self, chunk: pb.TensorChunk) -> bool:
        """Add a chunk; True when the tensor is complete."""
        if self.first is None:
            self.first = chunk
            if self.max_bytes is not None and chunk.total_bytes > self.max_bytes:
                raise ValueError(f"tensor {chunk.name!r} is {chunk.total_bytes:,} bytes; the limit is {self.max_bytes:,}")
        if chunk.offset != self.received:
            raise ValueError(f"tensor {chunk.name!r}: chunk at byte {chunk.offset} arrived when {self.received} were expected")
        self.parts.append(chunk.data)
        self.received += len(chunk.data)
        if self.received > self.first.total_bytes:
            raise ValueError(f"tensor {chunk.name!r}: more bytes than its declared {self.first.total_bytes:,}")
        return self.received == self.first.total_bytes

    def array(self) -> np.ndarray:
        assert self.first is not None
        return from_tensor(pb.Tensor(shape=self.first.shape, dtype=self.first.dtype, data=b"".join(self.parts)))


def assemble(chunks: Iterable[pb.TensorChunk]) -> np.ndarray:
    assembler = ChunkAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.array()


def _dtype(name: str) -> np.dtype:
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise ValueError(f"unknown tensor dtype {name!r}") from None
    if dtype.kind not in "biuf":
        raise ValueError(f"tensor dtype {name!r} is not numeric")
    return dtype
