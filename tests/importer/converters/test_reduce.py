"""Reduce ops with axes as an input (18/20, ReduceSum-13) match onnxruntime, constant or run-time axes."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import helper

_OPS = [(op, 18) for op in ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]]
_OPS += [("ReduceMax", 20), ("ReduceMin", 20), ("ReduceSum", 13)]
_AXES = [None, [], [1], [-1, 0], [0, 2, 1]]


def _x(op: str = "ReduceLogSum") -> np.ndarray:
    low = 0.2 if op == "ReduceLogSum" else -1.5  # ReduceLogSum needs positive sums
    return np.random.default_rng(0).uniform(low, 1.5, (2, 3, 4)).astype(np.float32)


def _ids(value: object) -> str:
    return "-".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


@pytest.mark.parametrize(
    "op_version,axes,keepdims,noop", itertools.product(_OPS, _AXES, [0, 1], [0, 1]), ids=_ids
)
def test_constant_axes(parity, one_node, op_version: tuple, axes: list | None, keepdims: int, noop: int) -> None:
    op, version = op_version
    feeds = {"x": _x(op)}
    constants = {} if axes is None else {"axes": np.array(axes, np.int64)}
    model = one_node(op, feeds, version, {"keepdims": keepdims, "noop_with_empty_axes": noop}, constants)
    parity(model, feeds)


@pytest.mark.parametrize("op_version,axes", itertools.product(_OPS, [[2], [-2, 0]]), ids=_ids)
def test_run_time_axes(parity, graph_model, op_version: tuple, axes: list) -> None:
    op, version = op_version
    feeds = {"x": _x(op), "axes": np.array(axes, np.int64)}
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
    inputs = [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4]),
        helper.make_tensor_value_info("axes", onnx.TensorProto.INT64, [len(axes)]),
    ]
    out_shape = np.sum(feeds["x"], axis=tuple(axes)).shape  # inference cannot know it: axes are data
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_shape)
    parity(graph_model([node], inputs, [y], version), feeds)


def test_axes_from_constant_node(parity, graph_model) -> None:
    axes = helper.make_node("Constant", [], ["axes"], value=onnx.numpy_helper.from_array(np.array([0, 2], np.int64)))
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_value_info("y", onnx.TypeProto())
    parity(graph_model([axes, node], [x], [y], 18), {"x": _x()})
