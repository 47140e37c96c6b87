"""The input verification runs on: one sample, with time and space cut down.

Parity compares onnxruntime and the torch graph on the same function; every weight
of a convolutional net takes part at any input size its strides allow, so a clip of
1 × 8 × 48 × 48 checks the same computation as 16 × 112 × 112 for a tenth of the
work. Each cut axis keeps its size modulo 32 (time: modulo 8), so every stride-2
layer down to 1/32 sees the same odd/even sizes, and pads computed for the declared
size stay right. A graph that cannot run at the smaller size (a classifier flattening
a fixed grid, a reshape to fixed sizes) is verified at its declared size instead.
"""

from __future__ import annotations

from .inputs import InputSpec

_SPACE = (32, 32)
"""(modulus, least size) for height and width."""
_TIME = (8, 8)
"""(modulus, least size) for time."""


def probe_specs(specs: list[InputSpec]) -> list[InputSpec]:
    """`specs` with batch 1 and time and space cut down, where the layout says which axes they are."""
    return [spec.with_(shape=_probe_shape(spec)) for spec in specs]


def _probe_shape(spec: InputSpec) -> tuple[int, ...]:
    shape = list(spec.shape)
    layout = spec.layout or ""
    if len(layout) != len(shape) or not layout.startswith("N") or "C" not in layout:
        return tuple(shape)
    for axis, letter in enumerate(layout):
        if letter == "N":
            shape[axis] = 1
        elif letter in "HW":
            shape[axis] = _cut(shape[axis], *_SPACE)
        elif letter == "T":
            shape[axis] = _cut(shape[axis], *_TIME)
    return tuple(shape)


def _cut(size: int, modulus: int, least: int) -> int:
    """The smallest size ≥ `least` congruent to `size` modulo `modulus`; `size` itself if that is not smaller."""
    if size <= least:
        return size
    smallest = size % modulus
    while smallest < least:
        smallest += modulus
    return min(smallest, size)
