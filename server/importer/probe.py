"""The input verification runs on: one sample, with time and space cut down where that loses nothing.

Parity compares onnxruntime and the torch graph on the same function, at any input size
the graph runs at. A cut axis keeps every convolution and pooling window over real data
at every tap: each such layer wider than 1 along it, whose input is at least 2 long
there at the declared size (read off the inferred shapes), keeps an input at least 2
long. Where the graph
pads SAME, which normalization turns into pads for the declared size, a cut axis also
keeps its size modulo 32, so every stride-2 layer down to 1/32 sees the same odd and
even sizes. A graph that cannot run at the smaller size (a classifier flattening a
fixed grid, a reshape to fixed sizes) is verified at its declared size instead.

Gradients are checked on a smaller probe still (`gradient_probe_specs`). That check asks
whether every input gets a finite, non-zero gradient through the whole graph, which
holds or fails alike at any size where each layer keeps at least one element along every
axis; it needs no layer to see two taps of real data. On a 3D ResNet the parity probe
then runs once without autograd and the gradient probe, an eighth of its size, once
forward and backward: a third less time than both on the parity probe.
"""

from __future__ import annotations

import math

from onnx import ModelProto

from .graph import static_shape, value_infos
from .inputs import InputSpec

_LEAST = {"H": 32, "W": 32, "T": 8}
_GRADIENT_LEAST = {"H": 16, "W": 16, "T": 4}
_MODULUS = 32
_WINDOWED = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")


def probe_specs(specs: list[InputSpec], model: ModelProto | None = None) -> list[InputSpec]:
    """`specs` with batch 1 and time and space cut down, where the layout says which axes they are."""
    return _cut_specs(specs, model, _LEAST, taps=2)


def gradient_probe_specs(specs: list[InputSpec], model: ModelProto | None = None) -> list[InputSpec]:
    """`specs` cut down for the gradient check: every windowed layer keeps an input at least 1 long."""
    return _cut_specs(specs, model, _GRADIENT_LEAST, taps=1)


def _cut_specs(specs: list[InputSpec], model: ModelProto | None, least: dict[str, int], taps: int) -> list[InputSpec]:
    windows = _window_inputs(model) if model is not None else []
    same = model is not None and any(
        attr.name == "auto_pad" and attr.s.startswith(b"SAME") for node in model.graph.node for attr in node.attribute)
    return [spec.with_(shape=_probe_shape(spec, windows, same, least, taps)) for spec in specs]


def _window_inputs(model: ModelProto) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(input shape, window shape) of every convolution and pooling layer whose shapes are known."""
    infos = value_infos(model)
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type not in _WINDOWED or not node.input or node.input[0] not in infos:
            continue
        shape = static_shape(infos[node.input[0]])
        kernel = next((tuple(attr.ints) for attr in node.attribute if attr.name == "kernel_shape"), None)
        if kernel is None and node.op_type != "MaxPool" and len(node.input) > 1 and node.input[1] in weights:
            kernel = weights[node.input[1]][2:]
        if shape is not None and kernel is not None and len(kernel) == len(shape) - 2:
            found.append((shape, kernel))
    return found


def _probe_shape(spec: InputSpec, windows: list[tuple[tuple[int, ...], tuple[int, ...]]], same: bool,
                 least_sizes: dict[str, int], taps: int) -> tuple[int, ...]:
    shape = list(spec.shape)
    layout = spec.layout or ""
    if len(layout) != len(shape) or not layout.startswith("N") or "C" not in layout:
        return tuple(shape)
    spatial = [letter for letter in layout if letter not in "NC"]
    for axis, letter in enumerate(layout):
        if letter == "N":
            shape[axis] = 1
        elif letter in least_sizes:
            index = 2 + spatial.index(letter)
            extents = [seen[index] for seen, kernel in windows
                       if len(seen) == len(shape) and kernel[index - 2] > 1 and seen[index] >= 2]
            reach = min(extents, default=shape[axis]) / shape[axis]
            least = max(least_sizes[letter], math.ceil(taps / reach)) if reach > 0 else shape[axis]
            shape[axis] = _cut(shape[axis], least, _MODULUS if same else 1)
    return tuple(shape)


def _cut(size: int, least: int, modulus: int) -> int:
    """The smallest size ≥ `least` congruent to `size` modulo `modulus`; `size` itself if that is not smaller."""
    if size <= least:
        return size
    smallest = size % modulus
    while smallest < least:
        smallest += modulus
    return min(smallest, size)
