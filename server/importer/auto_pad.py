"""Write `auto_pad` (SAME_UPPER, SAME_LOWER, VALID) as explicit pads, from static input shapes.

tf2onnx emits SAME padding, which onnx2torch cannot convert; with the shapes fixed,
the pads ONNX would compute are known and a plain (possibly asymmetric) pad remains.
"""

from __future__ import annotations

import math

import onnx
from onnx import ModelProto

from .errors import UnsupportedModel
from .graph import static_shape, value_infos

_OPS = ("Conv", "MaxPool", "AveragePool", "LpPool")


def explicit_pads(model: ModelProto) -> int:
    """Rewrite every auto_pad node; return how many were rewritten."""
    shapes = {name: static_shape(value) for name, value in value_infos(model).items()}
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    rewritten = 0
    for node in model.graph.node:
        attrs = {attr.name: attr for attr in node.attribute}
        mode = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
        if node.op_type not in _OPS or mode == "NOTSET":
            continue
        shape = shapes.get(node.input[0])
        if shape is None:
            raise UnsupportedModel(f"{node.op_type} node {node.name!r} uses auto_pad={mode} but its input shape is unknown", stage="normalize")
        spatial = shape[2:]
        if "kernel_shape" in attrs:
            kernel = list(attrs["kernel_shape"].ints)
        else:
            kernel = list(weights.get(node.input[1], (0, 0, *[0] * len(spatial)))[2:])
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(spatial)
        dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * len(spatial)
        pads = same_pads(spatial, kernel, strides, dilations, mode)
        for name in ("auto_pad", "pads"):
            if name in attrs:
                node.attribute.remove(attrs[name])
        node.attribute.append(onnx.helper.make_attribute("pads", pads))
        rewritten += 1
    return rewritten


def same_pads(spatial, kernel, strides, dilations, mode: str) -> list[int]:
    """ONNX's definition: output = ceil(input / stride) for SAME, extra pad at the end for UPPER."""
    if mode == "VALID":
        return [0] * (2 * len(spatial))
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin, end = (small, large) if mode == "SAME_UPPER" else (large, small)
        begins.append(begin)
        ends.append(end)
    return begins + ends
