"""Activations, layout ops, GroupNormalization, Dropout, TopK and CastLike match onnxruntime at each opset
version onnxruntime runs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

_RNG = np.random.default_rng(3)


def _x(*shape: int) -> np.ndarray:
    return _RNG.uniform(-3, 3, shape).astype(np.float32)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_20(parity, one_node, approximate: str) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Gelu", feeds, 20, {"approximate": approximate}), feeds)


@pytest.mark.parametrize("version", [18, 22])
def test_mish(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Mish", feeds, version), feeds)


def test_swish_24_against_its_definition(parity, one_node, graph_model) -> None:
    """onnxruntime has no Swish-24 kernel yet: compare with x · sigmoid(alpha · x) built from older ops."""
    feeds = {"x": _x(2, 3, 4)}
    nodes = [helper.make_node("Mul", ["x", "alpha"], ["ax"]), helper.make_node("Sigmoid", ["ax"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["y0"])]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4])
    alpha = onnx.numpy_helper.from_array(np.array(0.7, np.float32), "alpha")
    reference = graph_model(nodes, [x], [helper.make_tensor_value_info("y0", onnx.TensorProto.FLOAT, [2, 3, 4])], 21, [alpha])
    parity(one_node("Swish", feeds, 24, {"alpha": 0.7}), feeds, reference=reference)


@pytest.mark.parametrize("version", [10, 22])
def test_thresholded_relu(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("ThresholdedRelu", feeds, version, {"alpha": 0.5}), feeds)


@pytest.mark.parametrize("version", [6, 22])
def test_selu_with_its_own_constants(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Selu", feeds, version, {"alpha": 2.0, "gamma": 3.0}), feeds)


def test_celu(parity, one_node) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Celu", feeds, 12, {"alpha": 2.0}), feeds)


@pytest.mark.parametrize("version", [11, 12, 13])
@pytest.mark.parametrize("bounds", ["min", "max", "both", "none"])
def test_clip_with_omitted_or_computed_bounds(parity, graph_model, version: int, bounds: str) -> None:
    names = {"min": ["x", "lo"], "max": ["x", "", "hi"], "both": ["x", "lo", "hi"], "none": ["x"]}[bounds]
    node = helper.make_node("Clip", names, ["y"])
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3, 4])
    inputs = [x] + [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, []) for n in names[1:] if n]
    feeds = {"x": _x(2, 3, 4), **{n: np.array(v, np.float32) for n, v in (("lo", -1.0), ("hi", 0.5)) if n in names}}
    parity(graph_model([node], inputs, [helper.make_value_info("y", onnx.TypeProto())], version), feeds)


@pytest.mark.parametrize("version", [11, 13])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(parity, one_node, version: int, mode: str) -> None:
    feeds = {"x": _x(2, 8, 3, 5)}
    parity(one_node("DepthToSpace", feeds, version, {"blocksize": 2, "mode": mode}), feeds)


@pytest.mark.parametrize("version", [1, 13])
def test_space_to_depth(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4, 6)}
    parity(one_node("SpaceToDepth", feeds, version, {"blocksize": 2}), feeds)


@pytest.mark.parametrize("version", [1, 9, 11, 13, 21])
@pytest.mark.parametrize("axis", [0, 1, 3, -1, -4])
def test_flatten_at_every_axis(parity, one_node, version: int, axis: int) -> None:
    if version < 11 and axis < 0:
        pytest.skip("negative axes arrived in Flatten-11")
    feeds = {"x": _x(2, 3, 4, 5)}
    parity(one_node("Flatten", feeds, version, {"axis": axis}), feeds)


@pytest.mark.parametrize("version", [14, 19, 21])
def test_reshape_allowzero(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    model = one_node("Reshape", feeds, version, {"allowzero": 1}, {"shape": np.array([4, 3, 2], np.int64)})
    parity(model, feeds)


def test_reshape_allowzero_keeps_a_zero(parity, graph_model) -> None:
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [0, 3, 4])
    shape = onnx.numpy_helper.from_array(np.array([3, 4, 0], np.int64), "shape")
    model = graph_model([node], [x], [helper.make_value_info("y", onnx.TypeProto())], 14, [shape])
    parity(model, {"x": np.zeros((0, 3, 4), np.float32)}, grad=False)


@pytest.mark.parametrize("version,mode", [(7, "nearest"), (9, "nearest"), (9, "linear")])
def test_upsample(parity, graph_model, version: int, mode: str) -> None:
    scales = [1.0, 1.0, 2.0, 3.0]
    if version == 7:
        node, inits = helper.make_node("Upsample", ["x"], ["y"], mode=mode, scales=scales), []
    else:
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode=mode)
        inits = [onnx.numpy_helper.from_array(np.array(scales, np.float32), "scales")]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 3, 4])
    model = graph_model([node], [x], [helper.make_value_info("y", onnx.TypeProto())], version, inits)
    parity(model, {"x": _x(1, 2, 3, 4)})


def _group_norm(graph_model, version: int, shape, per: int):
    """GroupNormalization's output is typed by hand: shape inference leaves a function op's output untyped."""
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=3, epsilon=1e-3)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, shape)
    inits = [onnx.numpy_helper.from_array(_x(per), n) for n in ("scale", "bias")]
    return graph_model([node], [x], [y], version, inits)


@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 6, 4, 5), (1, 6, 3, 4, 5)])
def test_group_normalization_21_every_rank(parity, graph_model, shape) -> None:
    parity(_group_norm(graph_model, 21, shape, 6), {"x": _x(*shape)})


@pytest.mark.parametrize("version", [12, 13, 22])
def test_dropout_with_a_seed_and_its_mask(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Dropout", feeds, version, {"seed": 7}, num_outputs=2), feeds)


@pytest.mark.parametrize("version", [10, 11])
@pytest.mark.parametrize("largest", [0, 1])
def test_top_k_breaks_ties_by_lower_index(parity, one_node, version: int, largest: int) -> None:
    feeds = {"x": np.array([[3, 1, 3, 2, 1, 3], [0, 0, 5, 0, 5, 1]], np.float32)}
    attrs = {"axis": 1} if version == 10 else {"axis": 1, "largest": largest}
    parity(one_node("TopK", feeds, version, attrs, {"k": np.array([4], np.int64)}, num_outputs=2), feeds)


@pytest.mark.parametrize("version", [15, 19, 21])
@pytest.mark.parametrize("target", [np.float64, np.float16, np.int32])
def test_cast_like(parity, one_node, version: int, target) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("CastLike", feeds, version, constants={"like": np.zeros(1, target)}), feeds,
           grad=np.issubdtype(target, np.floating))
