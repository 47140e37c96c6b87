"""Mutated ONNX files for property-based tests: byte-level damage and structurally valid protobufs that lie."""

from __future__ import annotations

import onnx
from hypothesis import strategies as st
from onnx import TensorProto

from kinetoscope.server.importer import ImportFailed, import_model
from kinetoscope.server.service.errors import status_for

from .hostile import conv_model

BASE = conv_model()
BASE_BYTES = BASE.SerializeToString()
_OPS = ["Conv", "Relu", "Add", "MaxPool", "Gemm", "Reshape", "ConstantOfShape", "Expand", "Loop", "If", "Scan",
        "Frobnicate", "", "Identity", "BatchNormalization", "Concat", "Resize", "Tile", "Range"]
_DIMS = [-(2**62), -1, 0, 1, 2, 3, 7, 8, 2**24, 2**31, 2**62]
_NAMES = ["x", "w", "c", "y", "", "../x", "ghost"]


@st.composite
def damaged_bytes(draw) -> bytes:
    """The valid file truncated, overwritten, padded or spliced at random places."""
    data = bytearray(BASE_BYTES)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "splice"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    at = draw(st.integers(0, len(data)))
    if kind == "insert":
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:])
    start = draw(st.integers(0, len(data) - 1))
    return bytes(data[:at] + data[start : start + draw(st.integers(1, 64))] + data[at:])


@st.composite
def lying_protos(draw) -> bytes:
    """A well-formed protobuf whose graph says something wrong: ops, wiring, shapes, types, versions, locations."""
    model = onnx.ModelProto()
    model.CopyFrom(BASE)
    graph = model.graph
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["op", "wire", "drop", "dup", "dim", "init_dims", "dtype", "attr", "opset", "ir",
                                     "external", "shape_op", "elem_type"]))
        node = graph.node[draw(st.integers(0, len(graph.node) - 1))] if len(graph.node) else None
        if kind == "op" and node is not None:
            node.op_type = draw(st.sampled_from(_OPS))
        elif kind == "wire" and node is not None:
            names = node.input if draw(st.booleans()) or not node.output else node.output
            if names:
                names[draw(st.integers(0, len(names) - 1))] = draw(st.sampled_from(_NAMES))
        elif kind == "drop" and node is not None:
            graph.node.remove(node)
        elif kind == "dup" and node is not None:
            graph.node.add().CopyFrom(node)
        elif kind == "dim":
            dims = graph.input[0].type.tensor_type.shape.dim
            dims[draw(st.integers(0, len(dims) - 1))].dim_value = draw(st.sampled_from(_DIMS))
        elif kind == "init_dims" and graph.initializer:
            tensor = graph.initializer[0]
            tensor.dims[draw(st.integers(0, len(tensor.dims) - 1))] = draw(st.sampled_from(_DIMS))
        elif kind == "dtype" and graph.initializer:
            graph.initializer[0].data_type = draw(st.integers(0, 25))
        elif kind == "attr" and node is not None and node.attribute:
            attribute = node.attribute[0]
            del attribute.ints[:]
            attribute.ints.extend(draw(st.lists(st.sampled_from(_DIMS), max_size=6)))
        elif kind == "opset":
            model.opset_import[0].version = draw(st.integers(0, 40))
        elif kind == "ir":
            model.ir_version = draw(st.integers(0, 20))
        elif kind == "external" and graph.initializer:
            tensor = graph.initializer[0]
            tensor.data_location = TensorProto.EXTERNAL
            tensor.external_data.add(key="location", value=draw(st.sampled_from(["../../etc/passwd", "/etc/passwd", "w.bin", "", "~x"])))
        elif kind == "shape_op":
            shape = onnx.helper.make_tensor("s", TensorProto.INT64, [2], draw(st.lists(st.sampled_from(_DIMS), min_size=2, max_size=2)))
            graph.node.insert(0, onnx.helper.make_node("Constant", [], ["s"], value=shape))
            graph.node.insert(1, onnx.helper.make_node("ConstantOfShape", ["s"], ["z"]))
        elif kind == "elem_type":
            graph.input[0].type.tensor_type.elem_type = draw(st.integers(0, 25))
    return model.SerializeToString()


def outcome(data: bytes) -> str:
    """`imported` or the name of the importer error; anything else (a crash of the importer) propagates."""
    try:
        import_model(data)
    except ImportFailed as exc:
        code, _ = status_for(exc)
        assert code.name in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION"), (code, exc)
        return type(exc).__name__
    return "imported"
