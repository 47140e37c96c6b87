"""Pad-18+ matches onnxruntime: modes, the axes input, negative pads, constant_value, run-time pads."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnx2torch
import pytest
from onnx import helper

_VERSIONS = [18, 19, 21, 23, 24, 25]
_MODES = ["constant", "reflect", "edge", "wrap"]
# (pads, axes or None): x has shape (2, 3, 4, 5)
_PADS = [
    ([0, 1, 2, 0, 0, 2, 1, 3], None),  # asymmetric, every axis
    ([1, 2, 0, 1], [-1, 1]),  # the axes input, negative axis
    ([0, 0, -1, 1, 0, 0, 2, -2], None),  # negative pads crop
    ([-1, 2], [2]),
]


def _x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize(
    "version,mode,case",
    [c for c in itertools.product(_VERSIONS, _MODES, range(len(_PADS))) if c[:2] != (18, "wrap")],  # wrap: 19+
)
def test_pad(parity, one_node, version: int, mode: str, case: int) -> None:
    pads, axes = _PADS[case]
    feeds = {"x": _x()}
    constants = {"pads": np.array(pads, np.int64)}
    if mode == "constant":
        constants["value"] = np.array(2.5, np.float32)
    if axes is not None:
        constants.setdefault("value", np.array(0.0, np.float32))
        constants["axes"] = np.array(axes, np.int64)
    parity(one_node("Pad", feeds, version, {"mode": mode}, constants), feeds)


@pytest.mark.parametrize("mode", _MODES)
def test_run_time_pads(parity, graph_model, mode: str) -> None:
    feeds = {"x": _x(), "pads": np.array([1, 2, 0, 1], np.int64)}
    node = helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], mode=mode)
    inputs = [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4, 5]),
        helper.make_tensor_value_info("pads", onnx.TensorProto.INT64, [4]),
    ]
    axes = onnx.numpy_helper.from_array(np.array([-1, 1], np.int64), "axes")
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4, 4, 8])
    parity(graph_model([node], inputs, [y], 19, [axes]), feeds)


def test_unknown_mode_raises(one_node) -> None:
    model = one_node("Pad", {"x": _x()}, 18, {"mode": "constant"}, {"pads": np.zeros(8, np.int64)})
    next(a for a in model.graph.node[0].attribute if a.name == "mode").s = b"mirror"
    with pytest.raises(NotImplementedError, match="Pad with mode=mirror"):
        onnx2torch.convert(model)
