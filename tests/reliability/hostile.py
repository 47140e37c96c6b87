"""Hostile and broken model files, built with onnx.helper: what a stranger might upload."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
_RNG = np.random.default_rng(7)


@dataclass(frozen=True)
class Hostile:
    """One upload: the model bytes, the external files sent with it, and the status it must get."""

    name: str
    data: bytes
    expected: str
    """The grpc.StatusCode name the server must answer with."""
    external: dict[str, bytes] = field(default_factory=dict)


def _graph_model(nodes, inputs: dict[str, list[int]], outputs: dict[str, list[int] | None], inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "hostile",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        initializer=list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def conv_model(weight: np.ndarray | None = None) -> onnx.ModelProto:
    """A valid 3x3 conv over 1x3x8x8 followed by a ReLU: the base the mutations start from."""
    weight = _RNG.normal(size=(4, 3, 3, 3)).astype(np.float32) if weight is None else weight
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    out = [1, weight.shape[0], 8, 8]
    return _graph_model(nodes, {"x": [1, 3, 8, 8]}, {"y": out}, [numpy_helper.from_array(weight, "w")])


def with_external_weight(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    weight = model.graph.initializer[0]
    nbytes = len(weight.raw_data)
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        weight.external_data.add(key=key, value=value)
    return model


def giant_constant_of_shape() -> onnx.ModelProto:
    shape = numpy_helper.from_array(np.array([1_000_000, 1_000_000], np.int64), "shape")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ]
    return _graph_model(nodes, {"x": [1, 3]}, {"y": [1, 3]}, [shape])


def giant_expand() -> onnx.ModelProto:
    shape = numpy_helper.from_array(np.array([1, 1, 1_000_000, 1_000_000], np.int64), "shape")
    return _graph_model([helper.make_node("Expand", ["x", "shape"], ["y"])], {"x": [1, 1, 1, 1]},
                        {"y": [1, 1, 1_000_000, 1_000_000]}, [shape])


def cyclic() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="add"), helper.make_node("Relu", ["a"], ["b"], name="relu")]
    return _graph_model(nodes, {"x": [1, 3]}, {"b": [1, 3]})


def zero_size_input() -> onnx.ModelProto:
    model = conv_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 0
    return model


def zero_size_weight() -> onnx.ModelProto:
    return conv_model(np.zeros((0, 3, 3, 3), np.float32))


def nan_weights() -> onnx.ModelProto:
    weight = _RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    weight[1, 2, 0, 0] = np.nan
    return conv_model(weight)


def unknown_op() -> onnx.ModelProto:
    return _graph_model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")], {"x": [1, 3]}, {"y": [1, 3]})


def hostile_cases() -> list[Hostile]:
    """Every kind of bad upload the server must refuse with a clear status, and keep serving."""
    valid = conv_model().SerializeToString()
    weight = numpy_helper.to_array(conv_model().graph.initializer[0]).tobytes()
    return [
        Hostile("truncated", valid[: len(valid) // 2], "INVALID_ARGUMENT"),
        Hostile("random-bytes", _RNG.bytes(4096), "INVALID_ARGUMENT"),
        Hostile("external-dotdot", with_external_weight(conv_model(), "../../etc/passwd").SerializeToString(),
                "INVALID_ARGUMENT"),
        Hostile("external-absolute", with_external_weight(conv_model(), "/etc/passwd").SerializeToString(),
                "INVALID_ARGUMENT"),
        Hostile("external-not-uploaded", with_external_weight(conv_model(), "weights.bin").SerializeToString(),
                "INVALID_ARGUMENT"),
        Hostile("external-wrong-length", with_external_weight(conv_model(), "weights.bin").SerializeToString(),
                "INVALID_ARGUMENT", {"weights.bin": weight[:12]}),
        Hostile("constant-of-shape-1e12", giant_constant_of_shape().SerializeToString(), "RESOURCE_EXHAUSTED"),
        Hostile("expand-1e12", giant_expand().SerializeToString(), "RESOURCE_EXHAUSTED"),
        Hostile("cyclic-graph", cyclic().SerializeToString(), "INVALID_ARGUMENT"),
        Hostile("zero-size-input", zero_size_input().SerializeToString(), "INVALID_ARGUMENT"),
        Hostile("zero-size-weight", zero_size_weight().SerializeToString(), "INVALID_ARGUMENT"),
        Hostile("nan-weights", nan_weights().SerializeToString(), "INVALID_ARGUMENT"),
        Hostile("unknown-op", unknown_op().SerializeToString(), "INVALID_ARGUMENT"),
    ]
