"""Split-18 matches onnxruntime for num_outputs (even and uneven) and for split sizes, constant or run-time."""

from __future__ import annotations

import numpy as np
import onnx
import onnx2torch
import pytest
import torch
from onnx import helper


def _x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 7, 6)).astype(np.float32)


@pytest.mark.parametrize("axis,num_outputs", [(1, 3), (1, 2), (1, 4), (-1, 3), (0, 1), (0, 2), (1, 7)])
def test_num_outputs(parity, one_node, axis: int, num_outputs: int) -> None:
    feeds = {"x": _x()}
    attrs = {"axis": axis, "num_outputs": num_outputs}
    parity(one_node("Split", feeds, 18, attrs, num_outputs=num_outputs), feeds)


@pytest.mark.parametrize("axis,sizes", [(1, [2, 4, 1]), (-1, [1, 5]), (2, [0, 6])])
def test_split_sizes(parity, one_node, axis: int, sizes: list[int]) -> None:
    feeds = {"x": _x()}
    model = one_node("Split", feeds, 18, {"axis": axis}, {"split": np.array(sizes, np.int64)}, len(sizes))
    parity(model, feeds)


def test_run_time_split_sizes(parity, graph_model) -> None:
    feeds = {"x": _x(), "split": np.array([3, 4], np.int64)}
    node = helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1)
    inputs = [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 7, 6]),
        helper.make_tensor_value_info("split", onnx.TensorProto.INT64, [2]),
    ]
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2, s, 6]) for n, s in [("a", 3), ("b", 4)]]
    parity(graph_model([node], inputs, outputs, 18), feeds)


def test_num_outputs_that_do_not_fit_raise(one_node) -> None:
    """6 into 4 chunks of 2 leaves nothing for the last; onnxruntime refuses it too."""
    module = onnx2torch.convert(one_node("Split", {"x": _x()}, 18, {"axis": -1, "num_outputs": 4}, num_outputs=4))
    with pytest.raises(ValueError, match="does not make 4 chunks"):
        module(torch.from_numpy(_x()))
