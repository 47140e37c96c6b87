"""Every aliased (op, version) converts one representative graph to what onnxruntime computes."""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kinetoscope.server.importer.converters.registry import find_converter
from kinetoscope.server.importer.converters.versions import ALIASES

_RNG = np.random.default_rng(0)


def _x(*shape: int) -> np.ndarray:
    return _RNG.uniform(-0.9, 0.9, shape).astype(np.float32)


_I64 = np.int64
_FILL = helper.make_tensor("v", TensorProto.FLOAT, [1], [2.5])
_PAIR = {"a": np.array([1, 2, 3], np.float32), "b": np.array([1, 3, 0], np.float32)}
_UNARY = ["Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Sin", "Cos", "Tan", "Asin", "Acos",
          "Atan", "Round", "Identity", "Dropout", "GlobalAveragePool"]

# op -> (feeds, initializers, attributes, whether gradients flow); initializers follow feeds as node inputs.
_CASES: dict[str, Callable[[], tuple[dict, dict, dict, bool]]] = {
    **{op: (lambda: ({"x": _x(2, 3, 4, 5)}, {}, {}, True)) for op in _UNARY},
    "Conv": lambda: ({"x": _x(1, 2, 6, 5)}, {"w": _x(3, 2, 3, 3), "b": _x(3)}, {"pads": [1, 0, 1, 2]}, True),
    "ConvTranspose": lambda: ({"x": _x(1, 2, 4, 5)}, {"w": _x(2, 3, 3, 3)}, {"strides": [2, 2]}, True),
    "InstanceNormalization": lambda: ({"x": _x(2, 3, 4, 5)}, {"s": _x(3), "b": _x(3)}, {}, True),
    "RoiAlign": lambda: (
        {"x": _x(2, 3, 8, 8)},
        {"rois": np.array([[0, 0, 5, 5], [1, 2, 7, 6]], np.float32), "idx": np.array([0, 1], _I64)},
        {"output_height": 2, "output_width": 3, "sampling_ratio": 2},
        True,
    ),
    "EyeLike": lambda: ({"x": _x(3, 4)}, {}, {"k": 1}, False),
    "Cast": lambda: ({"x": _x(2, 3)}, {}, {"to": TensorProto.DOUBLE}, True),
    "Constant": lambda: ({}, {}, {"value": onnx.numpy_helper.from_array(_x(2, 3))}, False),
    "ConstantOfShape": lambda: ({}, {"s": np.array([2, 3], _I64)}, {"value": _FILL}, False),
    "Equal": lambda: ({"a": np.array([1, 2, 3], _I64), "b": np.array([1, 0, 3], _I64)}, {}, {}, False),
    "GreaterOrEqual": lambda: (_PAIR, {}, {}, False),
    "LessOrEqual": lambda: (_PAIR, {}, {}, False),
    "Flatten": lambda: ({"x": _x(2, 3, 4, 5)}, {}, {"axis": 2}, True),
    "Reshape": lambda: ({"x": _x(2, 3, 4)}, {"s": np.array([0, 4, -1], _I64)}, {}, True),
    "Shape": lambda: ({"x": _x(2, 3, 4)}, {}, {"start": 1}, False),
    "Transpose": lambda: ({"x": _x(2, 3, 4)}, {}, {"perm": [2, 0, 1]}, True),
    "Unsqueeze": lambda: ({"x": _x(2, 3)}, {"a": np.array([0, -1], _I64)}, {}, True),
    "Squeeze": lambda: ({"x": _x(2, 1, 3, 1)}, {"a": np.array([1, -1], _I64)}, {}, True),
    "IsInf": lambda: ({"x": np.array([1, np.inf, -np.inf, np.nan], np.float32)}, {}, {}, False),
    "IsNaN": lambda: ({"x": np.array([1, np.inf, -np.inf, np.nan], np.float32)}, {}, {}, False),
    "TopK": lambda: ({"x": _x(3, 5)}, {"k": np.array([2], _I64)}, {}, True),
}


_ORT_LACKS = {("RoiAlign", 22)}


@pytest.mark.parametrize("op,version,old", ALIASES, ids=[f"{op}-{v}" for op, v, _ in ALIASES])
def test_alias(parity, one_node, op: str, version: int, old: int) -> None:
    assert find_converter(op, version) is find_converter(op, old)
    feeds, constants, attrs, grad = _CASES[op]()
    outputs = 2 if op == "TopK" else 1
    model = one_node(op, feeds, version, attrs, constants, num_outputs=outputs)
    # onnxruntime has no kernel for these versions: compare against the same graph at the older version
    reference = one_node(op, feeds, old, attrs, constants, num_outputs=outputs) if (op, version) in _ORT_LACKS else None
    parity(model, feeds, grad=grad, reference=reference)
