"""numpy arrays ↔ kinetoscope.v1 Tensor and TensorChunk messages, shared by client and server.

Only numpy and the generated messages are imported here, so the client stays light.
Every tensor that arrives is checked: its dtype is a plain numeric one and its bytes
are exactly what its shape says, chunk by chunk, in order.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np

from kinetoscope.v1 import kinetoscope_pb2 as pb

MiB = 1 << 20
CHUNK_BYTES = MiB - 4096
"""Data per chunk message, leaving room for the header fields inside a 1 MiB message."""
DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "int64", "bool")


class WireError(ValueError):
    """A tensor or chunk on the wire that does not describe what it claims to."""


def _little_endian(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.name not in DTYPES:
        raise WireError(f"dtype {array.dtype.name} cannot go on the wire; use one of {', '.join(DTYPES)}")
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def to_tensor(array: np.ndarray) -> pb.Tensor:
    array = _little_endian(array)
    return pb.Tensor(shape=list(array.shape), dtype=array.dtype.name, data=array.tobytes())


def _check_layout(shape, dtype: str, nbytes: int, what: str) -> tuple[tuple[int, ...], np.dtype]:
    if dtype not in DTYPES:
        raise WireError(f"{what}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise WireError(f"{what}: shape {list(shape)} has a negative dimension")
    dt = np.dtype(dtype).newbyteorder("<")
    expected = math.prod(shape) * dt.itemsize
    if expected != nbytes:
        raise WireError(f"{what}: shape {list(shape)} of {dtype} takes {expected:,} bytes, but {nbytes:,} were given")
    return shape, dt


def from_tensor(tensor: pb.Tensor, what: str = "tensor") -> np.ndarray:
    shape, dt = _check_layout(tensor.shape, tensor.dtype, len(tensor.data), what)
    return np.frombuffer(tensor.data, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)


def to_chunks(name: str, array: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pb.TensorChunk]:
    """The array as TensorChunks of at most `chunk_bytes` data each, in order (one chunk when empty)."""
    array = _little_endian(array)
    data = memoryview(array.reshape(-1).view(np.uint8))
    total = len(data)
    for offset in range(0, max(total, 1), chunk_bytes):
        yield pb.TensorChunk(
            name=name, shape=list(array.shape), dtype=array.dtype.name,
            offset=offset, total_bytes=total, data=bytes(data[offset : offset + chunk_bytes]),
        )


class ChunkAssembler:
    """Collects the chunks of one tensor, in order, and checks they agree with one another."""

    def __init__(self, first: pb.TensorChunk) -> None:
        self.name = first.name
        self.shape, self.dtype = _check_layout(first.shape, first.dtype, first.total_bytes, f"tensor {first.name!r}")
        self.total = first.total_bytes
        self.buffer = bytearray()

    def add(self, chunk: pb.TensorChunk) -> bool:
        """Appends a chunk; True once the tensor is complete."""
        what = f"tensor {self.name!r}"
        if chunk.name != self.name or tuple(chunk.shape) != self.shape or chunk.total_bytes != self.total:
            raise WireError(f"{what}: a chunk for {chunk.name!r} {list(chunk.shape)} arrived before this one was complete")
        if chunk.offset != len(self.buffer):
            raise WireError(f"{what}: chunk at byte {chunk.offset:,}, expected {len(self.buffer):,} (chunks come in order)")
        if len(self.buffer) + len(chunk.data) > self.total:
            raise WireError(f"{what}: chunks exceed the declared {self.total:,} bytes")
        self.buffer += chunk.data
        return self.complete

    @property
    def complete(self) -> bool:
        return len(self.buffer) == self.total

    def array(self) -> np.ndarray:
        if not self.complete:
            raise WireError(f"tensor {self.name!r}: {len(self.buffer):,} of {self.total:,} bytes arrived")
        return np.frombuffer(self.buffer, dtype=self.dtype).astype(self.dtype.newbyteorder("="), copy=False).reshape(self.shape)


def assemble(chunks: Iterable[pb.TensorChunk]) -> dict[str, np.ndarray]:
    """Tensors by name from a sequence of chunks (tensors one after another)."""
    done: dict[str, np.ndarray] = {}
    current: ChunkAssembler | None = None
    for chunk in chunks:
        if current is None:
            current = ChunkAssembler(chunk)
        if current.add(chunk):
            done[current.name] = current.array()
            current = None
    if current is not None:
        current.array()  # raises: incomplete
    return done
