"""Bad and hostile model files: each refused with a clear message, nothing outside the upload read."""

from __future__ import annotations

import builtins
import io
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kinetoscope.server.importer import (
    ImportLimits,
    ImportOptions,
    InvalidModel,
    ModelTooLarge,
    UnsafeExternalData,
    UnsupportedModel,
    import_model,
)

from .onnx_builders import init, model

RNG = np.random.default_rng(1)


def _conv_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    return model(nodes, {"x": [1, 3, 8, 8]}, ["y"], [init("w", RNG.normal(size=(4, 3, 3, 3)))])


def _with_external_weight(m: onnx.ModelProto, location: str, length: int | None = None) -> onnx.ModelProto:
    weight = m.graph.initializer[0]
    nbytes = len(weight.raw_data) if weight.HasField("raw_data") else np.prod(weight.dims) * 4
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": str(length or nbytes)}.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return m


@pytest.fixture
def no_file_reads(monkeypatch):
    """Fail the test if the importer opens any file while it runs."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the importer tried to open {args[0]!r}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)


def test_truncated_file_is_refused() -> None:
    data = _conv_model().SerializeToString()
    with pytest.raises(InvalidModel, match="not an ONNX model|onnx.checker|declares shape"):
        import_model(data[: len(data) // 2])


def test_random_bytes_are_refused() -> None:
    with pytest.raises(InvalidModel, match="not an ONNX model"):
        import_model(RNG.bytes(4096))


def test_empty_file_is_refused() -> None:
    with pytest.raises(InvalidModel, match="empty"):
        import_model(b"")


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/weights.bin", "..", "C:weights.bin"])
def test_external_data_outside_the_upload_is_refused(location: str, no_file_reads) -> None:
    data = _with_external_weight(_conv_model(), location).SerializeToString()
    with pytest.raises(UnsafeExternalData, match="not a plain file name"):
        import_model(data, external_data={})


def test_external_data_path_traversal_from_disk_reads_nothing_outside(tmp_path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4 * 3 * 3 * 3, np.float32).tobytes())
    folder = tmp_path / "upload"
    folder.mkdir()
    path = folder / "model.onnx"
    path.write_bytes(_with_external_weight(_conv_model(), "../secret.bin").SerializeToString())
    with pytest.raises(UnsafeExternalData, match=r"\.\./secret\.bin"):
        import_model(path)


def test_external_data_behind_a_symlink_is_not_followed(tmp_path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4 * 3 * 3 * 3, np.float32).tobytes())
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "weights.bin").symlink_to(secret)
    path = folder / "model.onnx"
    path.write_bytes(_with_external_weight(_conv_model(), "weights.bin").SerializeToString())
    with pytest.raises(InvalidModel, match="was not uploaded"):
        import_model(path)


def test_external_data_from_uploaded_files_imports(tmp_path) -> None:
    m = _conv_model()
    weights = numpy_helper.to_array(m.graph.initializer[0]).tobytes()
    data = _with_external_weight(m, "weights.bin").SerializeToString()
    imported = import_model(data, external_data={"weights.bin": weights})
    assert imported.parity.max_rel_err < 1e-5
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(data)
    (folder / "weights.bin").write_bytes(weights)
    assert import_model(folder / "model.onnx").parity.max_rel_err < 1e-5


def test_external_data_of_the_wrong_length_is_refused() -> None:
    data = _with_external_weight(_conv_model(), "weights.bin").SerializeToString()
    with pytest.raises(InvalidModel, match="holds 12 bytes"):
        import_model(data, external_data={"weights.bin": b"x" * 12})


def test_giant_constant_of_shape_is_refused_before_allocating() -> None:
    shape = numpy_helper.from_array(np.array([1_000_000, 1_000_000], np.int64), "shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ]
    m = model(nodes, {"x": [1, 3]}, ["y"], [shape])
    with pytest.raises(ModelTooLarge, match=r"1e\+12 elements"):
        import_model(m.SerializeToString())


def test_giant_expand_is_refused() -> None:
    shape = numpy_helper.from_array(np.array([1, 3, 100_000, 100_000], np.int64), "shape")
    nodes = [helper.make_node("Expand", ["x", "shape"], ["y"])]
    m = model(nodes, {"x": [1, 3, 1, 1]}, ["y"], [shape])
    with pytest.raises(ModelTooLarge, match="ConstantOfShape|Expand"):
        import_model(m.SerializeToString())


def test_huge_initializer_declaration_is_refused() -> None:
    m = _conv_model()
    weight = m.graph.initializer[0]
    del weight.dims[:]
    weight.dims.extend([1 << 20, 1 << 20])
    with pytest.raises(ModelTooLarge, match="tensor 'w'"):
        import_model(m.SerializeToString())


def test_oversize_file_is_refused_by_limit() -> None:
    data = _conv_model().SerializeToString()
    options = ImportOptions(limits=ImportLimits(max_model_bytes=100))
    with pytest.raises(ModelTooLarge, match="the limit is 100"):
        import_model(data, options=options)


def test_unknown_ops_are_all_listed() -> None:
    nodes = [
        helper.make_node("FrobnicateA", ["x"], ["a"], name="first"),
        helper.make_node("FrobnicateB", ["a"], ["b"], name="second"),
        helper.make_node("FrobnicateA", ["b"], ["y"], name="third"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedModel) as caught:
        import_model(m.SerializeToString())
    message = str(caught.value)
    assert "FrobnicateA (nodes: first, third)" in message and "FrobnicateB (nodes: second)" in message


def test_known_op_without_a_converter_lists_every_node() -> None:
    nodes = [
        helper.make_node("Hardmax", ["x"], ["h"], name="hardmax1"),
        helper.make_node("Shrink", ["h"], ["s"], name="shrink"),
        helper.make_node("Hardmax", ["s"], ["y"], name="hardmax2"),
    ]
    m = model(nodes, {"x": [1, 64]}, ["y"], [])
    with pytest.raises(UnsupportedModel, match=r"no converter for 2 op\(s\): Hardmax-17 \(nodes: hardmax1, hardmax2\); Shrink-17"):
        import_model(m.SerializeToString())


def test_cyclic_graph_is_refused() -> None:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidModel, match="onnx.checker refused"):
        import_model(m.SerializeToString())


def test_zero_size_input_is_refused() -> None:
    m = _conv_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 0
    with pytest.raises(InvalidModel, match="zero"):
        import_model(m.SerializeToString())


def test_dynamic_dims_must_be_declared_and_the_message_says_how() -> None:
    m = _conv_model()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(InvalidModel, match=r"dynamic dims 2 \(height\).*--input x="):
        import_model(m.SerializeToString())
    imported = import_model(m.SerializeToString(), inputs=["x=1x3x8x8"])
    assert imported.inputs[0].shape == (1, 3, 8, 8)


def test_declared_shape_that_contradicts_the_graph_is_refused() -> None:
    with pytest.raises(InvalidModel, match="dimension 1 is 3 in the graph but declared as 4"):
        import_model(_conv_model().SerializeToString(), inputs=["x=1x4x8x8"])


def test_declaring_an_input_that_does_not_exist_is_refused() -> None:
    with pytest.raises(InvalidModel, match="no graph input is named 'rgb'; the inputs are x"):
        import_model(_conv_model().SerializeToString(), inputs=["rgb=1x3x8x8"])


@pytest.mark.parametrize("where", ["raw", "float_data", "external"])
def test_a_nan_weight_is_refused_wherever_the_file_keeps_it(where: str, tmp_path) -> None:
    values = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    values.flat[[5, 17]] = np.nan
    m = _conv_model()
    weight = m.graph.initializer[0]
    if where == "float_data":
        weight.ClearField("raw_data")
        weight.float_data.extend(values.ravel().tolist())
    else:
        weight.raw_data = values.tobytes()
    external = None
    if where == "external":
        external = {"w.bin": values.tobytes()}
        _with_external_weight(m, "w.bin")
    with pytest.raises(InvalidModel, match=r"weight tensor 'w' holds 2 NaN value\(s\) of 108; re-export") as caught:
        import_model(m.SerializeToString(), external_data=external)
    assert caught.value.stage == "load"
