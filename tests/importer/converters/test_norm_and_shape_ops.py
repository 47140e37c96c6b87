"""LpNormalization, MeanVarianceNormalization, Size, Shape with start/end and GatherElements with negative
indices match onnxruntime at each opset version it runs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

_RNG = np.random.default_rng(11)


def _x(*shape: int) -> np.ndarray:
    return _RNG.uniform(-3, 3, shape).astype(np.float32)


@pytest.mark.parametrize("version", [1, 22])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_lp_normalization(parity, one_node, version: int, p: int, axis: int) -> None:
    x = _x(2, 3, 4, 5)
    x[1, :, 2, :] = x[:, 1, :, 3] = 0.0  # zero vectors along every axis: they stay zero
    feeds = {"x": x}
    parity(one_node("LpNormalization", feeds, version, {"p": p, "axis": axis}), feeds)


def test_lp_normalization_refuses_other_norms(one_node) -> None:
    import onnx2torch

    with pytest.raises(NotImplementedError, match="LpNormalization with p=3"):
        onnx2torch.convert(one_node("LpNormalization", {"x": _x(2, 3)}, 22, {"p": 3}))


def _mvn(shape: tuple[int, ...], version: int, axes) -> onnx.ModelProto:
    """Built without strict shape inference, which onnx 1.23 fails inside MVN-13's own function body."""
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], **({"axes": axes} if axes else {}))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)], ir_version=7)


@pytest.mark.parametrize("version", [9, 13])
@pytest.mark.parametrize("axes", [None, [1], [0, 2, 3, 4], [2, 3, 4]])
def test_mean_variance_normalization(parity, version: int, axes) -> None:
    feeds = {"x": _x(2, 3, 4, 5, 6) * 2 + 1}
    parity(_mvn((2, 3, 4, 5, 6), version, axes), feeds)


def test_mean_variance_normalization_imports() -> None:
    """The importer's checker accepts MVN-13 although onnx's strict inference fails in the op's own body."""
    from kinetoscope.server.importer import InputSpec, import_model

    model = _mvn((1, 3, 4, 8, 8), 13, None)
    imported = import_model(model.SerializeToString(), inputs=[InputSpec("x", (1, 3, 4, 8, 8), value_range=(-3, 3))])
    assert imported.parity.max_rel_err <= 1e-4
    assert [layer.op_type for layer in imported.catalog] == ["MeanVarianceNormalization"]


@pytest.mark.parametrize("version", [1, 13, 19, 21, 23, 24, 25])
def test_size(one_node, version: int) -> None:
    """onnxruntime may lack the newest versions: the value is checked directly (a count has no gradient)."""
    import onnx2torch
    import torch

    model = one_node("Size", {"x": _x(2, 3, 4)}, version)
    got = onnx2torch.convert(model)(torch.zeros(2, 3, 4))
    assert got.dtype == torch.int64 and got.shape == () and int(got) == 24


@pytest.mark.parametrize("version", [1, 13])
def test_size_against_onnxruntime(parity, one_node, version: int) -> None:
    feeds = {"x": _x(2, 3, 4)}
    parity(one_node("Size", feeds, version), feeds, grad=False)


@pytest.mark.parametrize("version", [15, 19, 21])
@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-2, None), (1, -1), (-10, 10), (3, 1), (2, 2)])
def test_shape_with_start_and_end(parity, one_node, version: int, start: int, end) -> None:
    feeds = {"x": _x(2, 3, 4, 5)}
    attrs = {"start": start, **({"end": end} if end is not None else {})}
    parity(one_node("Shape", feeds, version, attrs), feeds, grad=False)


@pytest.mark.parametrize("version", [11, 13])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_with_negative_indices(parity, graph_model, version: int, axis: int) -> None:
    data = _x(3, 4, 5)
    size = data.shape[axis]
    indices = _RNG.integers(-size, size, (3, 4, 5)).astype(np.int64)
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)
    inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, data.shape),
              helper.make_tensor_value_info("i", onnx.TensorProto.INT64, indices.shape)]
    model = graph_model([node], inputs, [helper.make_value_info("y", onnx.TypeProto())], version)
    parity(model, {"x": data, "i": indices})
