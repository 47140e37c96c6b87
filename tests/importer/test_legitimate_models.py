"""Models that are valid ONNX but look odd: real exporters' idioms import instead of being refused.

PyTorch's opset-11 Resize writes its unused `roi` as an empty constant; paddle2onnx
declares dynamic dims as -1, writes empty helper constants, and computes reshape
targets from Shape before a Transpose.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from kinetoscope.server.importer import InvalidModel, import_model
from kinetoscope.server.importer.catalog import build_catalog

RNG = np.random.default_rng(5)


class _UpsampleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv2(x)


def test_torch_opset11_resize_with_an_empty_roi_imports() -> None:
    buffer = io.BytesIO()
    torch.manual_seed(0)
    torch.onnx.export(_UpsampleNet().eval(), (torch.randn(1, 3, 6, 6),), buffer, input_names=["x"],
                      output_names=["y"], opset_version=11, dynamo=False)
    exported = onnx.load_from_string(buffer.getvalue())
    empties = [n for n in exported.graph.node if n.op_type == "Constant" and
               list(numpy_helper.to_array(n.attribute[0].t).shape) == [0]]
    assert empties, "the exporter writes Resize's unused roi as an empty constant"
    imported = import_model(buffer.getvalue())
    assert imported.parity.max_rel_err < 1e-5
    conv2 = imported.layer("/conv2/Conv")
    assert conv2.shape == (1, 2, 12, 12)
    assert conv2.stride["x"]["H"] == 0.5 and conv2.receptive_field["x"]["H"] == 4  # 3 + 2 * 0.5


def _f32(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _i64(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, np.int64), name)


def _paddle_style(batch_dim: int = -1) -> onnx.ModelProto:
    """Conv → Reshape (target from Shape) to 5D → Transpose (channel shuffle) → Reshape → Conv, as paddle2onnx
    writes a ShuffleNet block, with a -1 batch dim and an empty helper constant for Resize's unused inputs."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Shape", ["c1"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "zero", "one"], ["batch"], name="batch"),
        helper.make_node("Concat", ["batch", "groups"], ["split_shape"], axis=0, name="split_shape"),
        helper.make_node("Reshape", ["c1", "split_shape"], ["grouped"], name="group"),
        helper.make_node("Transpose", ["grouped"], ["shuffled"], perm=[0, 2, 1, 3, 4], name="shuffle"),
        helper.make_node("Concat", ["batch", "merged"], ["merge_shape"], axis=0, name="merge_shape"),
        helper.make_node("Reshape", ["shuffled", "merge_shape"], ["merged_x"], name="merge"),
        helper.make_node("Constant", [], ["no_value"], value=helper.make_tensor("e", TensorProto.FLOAT, [0], []),
                         name="empty_helper"),
        helper.make_node("Resize", ["merged_x", "no_value", "no_value", "sizes"], ["resized"], mode="nearest",
                         name="upsample"),
        helper.make_node("Conv", ["resized", "w2"], ["y"], pads=[1, 1, 1, 1], name="conv2"),
    ]
    inits = [_f32("w1", RNG.normal(size=(8, 3, 3, 3))), _f32("w2", RNG.normal(size=(5, 8, 3, 3))),
             _i64("zero", [0]), _i64("one", [1]), _i64("groups", [2, 4, 6, 6]), _i64("merged", [8, 6, 6]),
             _i64("sizes", [1, 8, 12, 12])]
    graph = helper.make_graph(nodes, "paddle", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 5, 12, 12])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 7
    return m


def test_paddle_style_graph_imports_and_the_catalog_follows_reshape_then_transpose() -> None:
    imported = import_model(_paddle_style().SerializeToString())
    assert imported.inputs[0].shape == (1, 3, 6, 6), "an undeclared -1 batch dim becomes 1"
    assert imported.parity.max_rel_err < 1e-5
    assert [layer.name for layer in imported.catalog] == ["c1", "y"], "a shuffled channel axis is no layer's"
    conv2 = imported.layer("conv2")
    assert conv2.axes == "NCHW" and conv2.shape == (1, 5, 12, 12)
    assert conv2.receptive_field["x"]["H"] == 4 and conv2.stride["x"]["H"] == 0.5


def test_a_declared_input_fixes_a_minus_one_dimension() -> None:
    m = _paddle_style()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = -1
    with pytest.raises(InvalidModel, match=r"dynamic dims 2 \(\?\).*--input x=1x3x224x6"):
        import_model(m.SerializeToString())
    imported = import_model(m.SerializeToString(), inputs=["x=1x3x6x6"])
    assert imported.inputs[0].shape == (1, 3, 6, 6)
    assert imported.parity.max_rel_err < 1e-5


def test_a_negative_dimension_other_than_minus_one_is_refused() -> None:
    m = _paddle_style(batch_dim=-3)
    with pytest.raises(InvalidModel, match="declares dimension 0 as -3"):
        import_model(m.SerializeToString())


def test_an_empty_activation_is_still_refused() -> None:
    """A Slice that keeps nothing of the input leaves the model nothing to compute."""
    nodes = [helper.make_node("Slice", ["x", "start", "end", "axes"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    graph = helper.make_graph(nodes, "empty", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [_i64("start", [4]), _i64("end", [4]), _i64("axes", [2])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    with pytest.raises(InvalidModel, match="'s' .*zero-size dimension"):
        import_model(onnx.shape_inference.infer_shapes(m).SerializeToString())


def test_the_catalog_degrades_where_a_permutation_cannot_be_followed() -> None:
    """Shapes unknown after a rank-changing Reshape: the Transpose's perm is longer than the labels it sees."""
    imported = import_model(_paddle_style().SerializeToString())
    graph = imported.graph
    keep = [v for v in graph.graph.value_info if v.name not in ("grouped", "shuffled", "merged_x", "resized")]
    del graph.graph.value_info[:]
    graph.graph.value_info.extend(keep)
    catalog = build_catalog(graph, imported.inputs)
    names = [layer.name for layer in catalog]
    assert names[0] == "c1" and "shuffled" not in names
