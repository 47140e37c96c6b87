"""Small graph rewrites that make exporter output convertible without changing what it computes."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, numpy_helper

from .graph import initializer_map


def drop_redundant_allowzero(model: ModelProto) -> int:
    """Reshape's allowzero=1 only differs from 0 when the target shape holds a 0.

    The dynamo exporter sets it on every Reshape; onnx2torch refuses it. With a
    constant target shape free of zeros the attribute can simply go.
    """
    weights = initializer_map(model.graph)
    dropped = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        flag = next((a for a in node.attribute if a.name == "allowzero"), None)
        if flag is None or flag.i == 0:
            continue
        if np.all(numpy_helper.to_array(weights[node.input[1]]) != 0):
            node.attribute.remove(flag)
            dropped += 1
    return dropped
