"""Resize-11/13/18/19 match onnxruntime for every nearest and coordinate mode, linear and cubic, 4D and 5D."""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
import onnx
import onnx2torch
import pytest
import torch
from onnx import helper

_SHAPES = {4: (1, 2, 5, 6), 5: (1, 2, 3, 4, 5)}
# (scales, sizes) for the spatial axes: upsample, downsample, mixed, by sizes
_TARGETS = [([2.0, 1.5], None), ([0.6, 0.5], None), ([1.7, 0.4], None), (None, [8, 3])]
_COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]
_NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def _x(rank: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(_SHAPES[rank]).astype(np.float32)


def _model(graph_model, version: int, rank: int, target: int, attrs: dict, roi: Optional[list] = None):
    """Resize of the spatial axes; every optional input a version requires is given, empty when unused."""
    scales, sizes = _TARGETS[target]
    spatial = rank - 2
    scales = None if scales is None else [1.0, 1.0] + (scales * 2)[:spatial]
    sizes = None if sizes is None else [1, 2] + (sizes * 2)[:spatial]
    values = {
        "roi": np.array(roi or [], np.float32),
        "scales": np.array(scales or [], np.float32),
        "sizes": None if sizes is None else np.array(sizes, np.int64),
    }
    names = [n if values[n] is not None and (values[n].size or version < 13 and n != "sizes") else "" for n in values]
    inits = [onnx.numpy_helper.from_array(values[n], n) for n in names if n]
    node = helper.make_node("Resize", ["x", *names], ["y"], **attrs)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, _SHAPES[rank])
    return graph_model([node], [x], [helper.make_value_info("y", onnx.TypeProto())], version, inits)


@pytest.mark.parametrize(
    "rank,target,coord,nearest", itertools.product([4, 5], range(len(_TARGETS)), _COORDS, _NEAREST)
)
def test_nearest(parity, graph_model, rank: int, target: int, coord: str, nearest: str) -> None:
    attrs = {"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": nearest}
    parity(_model(graph_model, 19, rank, target, attrs), {"x": _x(rank)})


@pytest.mark.parametrize("rank,target", itertools.product([4, 5], range(len(_TARGETS))))
def test_nearest_tf_half_pixel(parity, graph_model, rank: int, target: int) -> None:
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn", "nearest_mode": "floor"}
    parity(_model(graph_model, 11, rank, target, attrs), {"x": _x(rank)})


@pytest.mark.parametrize("rank,target,coord", itertools.product([4, 5], range(len(_TARGETS)), _COORDS))
def test_linear(parity, graph_model, rank: int, target: int, coord: str) -> None:
    attrs = {"mode": "linear", "coordinate_transformation_mode": coord}
    parity(_model(graph_model, 19, rank, target, attrs), {"x": _x(rank)})


@pytest.mark.parametrize("target,coord,exclude", itertools.product(range(len(_TARGETS)), _COORDS, [0, 1]))
def test_cubic(parity, graph_model, target: int, coord: str, exclude: int) -> None:
    attrs = {"mode": "cubic", "coordinate_transformation_mode": coord, "exclude_outside": exclude}
    attrs["cubic_coeff_a"] = -0.5 if exclude else -0.75
    parity(_model(graph_model, 19, 4, target, attrs), {"x": _x(4)})


@pytest.mark.parametrize(
    "version,mode,target", itertools.product([11, 13, 18, 19], ["nearest", "linear"], range(len(_TARGETS)))
)
def test_versions(parity, graph_model, version: int, mode: str, target: int) -> None:
    attrs = {"mode": mode, "coordinate_transformation_mode": "half_pixel"}
    parity(_model(graph_model, version, 4, target, attrs), {"x": _x(4)})


@pytest.mark.parametrize("mode,target", itertools.product(["nearest", "linear"], range(len(_TARGETS))))
def test_tf_crop_and_resize(parity, graph_model, mode: str, target: int) -> None:
    attrs = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": -3.0}
    roi = [0, 0, -0.2, 0.3, 1, 1, 0.8, 1.3]
    parity(_model(graph_model, 13, 4, target, attrs, roi), {"x": _x(4)})


@pytest.mark.parametrize(
    "policy,mode", itertools.product(["stretch", "not_larger", "not_smaller"], ["nearest", "linear"])
)
def test_axes_and_aspect_ratio(parity, graph_model, policy: str, mode: str) -> None:
    node = helper.make_node(
        "Resize", ["x", "", "", "sizes"], ["y"], mode=mode, axes=[3, 2], keep_aspect_ratio_policy=policy
    )
    sizes = onnx.numpy_helper.from_array(np.array([9, 7], np.int64), "sizes")
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, _SHAPES[4])
    model = graph_model([node], [x], [helper.make_value_info("y", onnx.TypeProto())], 18, [sizes])
    parity(model, {"x": _x(4)})


@pytest.mark.parametrize("mode,coord", itertools.product(["linear", "cubic"], _COORDS))
def test_antialias_upsampling(parity, graph_model, mode: str, coord: str) -> None:
    attrs = {"mode": mode, "antialias": 1, "coordinate_transformation_mode": coord}
    parity(_model(graph_model, 19, 4, 0, attrs), {"x": _x(4)})


def test_run_time_sizes(parity, graph_model) -> None:
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear")
    inputs = [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, _SHAPES[4]),
        helper.make_tensor_value_info("sizes", onnx.TensorProto.INT64, [4]),
    ]
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 7, 4])
    feeds = {"x": _x(4), "sizes": np.array([1, 2, 7, 4], np.int64)}
    parity(graph_model([node], inputs, [y], 13), feeds)


def test_linear_gradcheck(graph_model) -> None:
    attrs = {"mode": "linear", "coordinate_transformation_mode": "align_corners"}
    module = onnx2torch.convert(_model(graph_model, 19, 4, 2, attrs)).double()
    x = torch.randn(_SHAPES[4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))


def test_unknown_coordinate_mode_raises(graph_model) -> None:
    model = _model(graph_model, 19, 4, 0, {"mode": "linear", "coordinate_transformation_mode": "half_pixel"})
    next(a for a in model.graph.node[0].attribute if a.name == "coordinate_transformation_mode").s = b"quarter_pixel"
    with pytest.raises(NotImplementedError, match="Resize with mode=linear, quarter_pixel"):
        onnx2torch.convert(model)


_ANTIALIAS_COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]


@pytest.mark.parametrize("version", [18, 19])
@pytest.mark.parametrize("rank,target,mode", [
    (4, 1, "linear"), (4, 2, "linear"), (4, 3, "linear"), (5, 1, "linear"), (5, 3, "linear"),
    (4, 1, "cubic"), (4, 2, "cubic"), (4, 3, "cubic"),  # onnxruntime runs cubic on 4D inputs only
])
@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_antialias(parity, graph_model, version: int, rank: int, target: int, mode: str, exclude_outside: int) -> None:
    """Downsampling with the filter widened by 1 / scale; an upsampled axis (target 2's first) resizes as without."""
    attrs = {"mode": mode, "antialias": 1, "exclude_outside": exclude_outside}
    parity(_model(graph_model, version, rank, target, attrs), {"x": _x(rank)})


@pytest.mark.parametrize("coord", _ANTIALIAS_COORDS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_coordinate_modes(parity, graph_model, coord: str, mode: str) -> None:
    attrs = {"mode": mode, "antialias": 1, "coordinate_transformation_mode": coord, "cubic_coeff_a": -0.5}
    parity(_model(graph_model, 18, 4, 1, attrs), {"x": _x(4)})


def test_antialias_strong_downsampling(parity, graph_model) -> None:
    """A quarter-size output: each output averages a window of about eight inputs."""
    x = np.random.default_rng(1).standard_normal((1, 2, 32, 24)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", antialias=1)
    sizes = onnx.numpy_helper.from_array(np.array([1, 2, 8, 5], np.int64), "sizes")
    model = graph_model([node], [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
                        [helper.make_value_info("y", onnx.TypeProto())], 18, [sizes])
    parity(model, {"x": x})
