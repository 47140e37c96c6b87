"""Small shared helpers over an ONNX graph: who produces and consumes a tensor, shapes."""

from __future__ import annotations

from collections import defaultdict

import onnx
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto

VALUES_UNREAD_FROM_BYTES = 64 << 10
"""Initializers this large are never read by value by the checks, shape inference or the catalog,
which read values only of small tensors (shapes, axes, pads). They are left out of the copy
those run on (`skeleton`), so models above protobuf's 2 GiB limit can be checked at all and
every check copies less; and a folded weight this large may stay out of the graph until the
graph is wanted whole (fold_bn.py)."""
INTERNAL_PREFIX = "kinetoscope::"


def producers(graph: GraphProto) -> dict[str, NodeProto]:
    return {out: node for node in graph.node for out in node.output if out}


def consumers(graph: GraphProto) -> dict[str, list[NodeProto]]:
    found: dict[str, list[NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                found[name].append(node)
    return found


def initializer_map(graph: GraphProto) -> dict[str, TensorProto]:
    return {init.name: init for init in graph.initializer}


def real_inputs(graph: GraphProto) -> list[ValueInfoProto]:
    """Graph inputs that are not initializers (old exporters list weights as inputs too)."""
    weights = {init.name for init in graph.initializer}
    return [value for value in graph.input if value.name not in weights]


def static_shape(value: ValueInfoProto) -> tuple[int, ...] | None:
    """The value's shape when every dim is a known integer, else None."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = value.type.tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def value_infos(model: ModelProto) -> dict[str, ValueInfoProto]:
    """Every typed value: inputs, outputs and inferred intermediates."""
    graph = model.graph
    return {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}


def skeleton(model: ModelProto) -> ModelProto:
    """A copy without big weights: they become typed graph inputs of the same shape.

    Checks and shape inference need the weights' shapes, not their values, and this
    copy always fits protobuf's 2 GiB limit. The big weights are never copied.
    """
    light = without_initializers(model)
    graph = light.graph
    declared = {v.name for v in graph.input}
    for init in model.graph.initializer:
        if stored_nbytes(init) >= VALUES_UNREAD_FROM_BYTES:
            if init.name not in declared:
                graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            graph.initializer.append(init)
    return light


def without_initializers(model: ModelProto) -> ModelProto:
    """A copy of everything but the graph's initializers (ModelProto.CopyFrom would copy every weight)."""
    light = ModelProto()
    _copy_fields(model, light, skip="graph")
    _copy_fields(model.graph, light.graph, skip="initializer")
    return light


def _copy_fields(source, target, skip: str) -> None:
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(target, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def stored_nbytes(tensor: TensorProto) -> int:
    """The bytes a tensor's values take, from its dims and type: reading `raw_data` copies it, every time."""
    if tensor.data_type == TensorProto.STRING or tensor.data_location == TensorProto.EXTERNAL:
        return sum(len(s) for s in tensor.string_data)
    count = 1
    for dim in tensor.dims:
        count *= max(dim, 0)
    try:
        return count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return 0


_SAME_SHAPE_OPS = ("MeanVarianceNormalization", "GroupNormalization")
"""Ops whose output has their input's type and shape, where onnx's inference can leave it open (onnx 1.23
fails inside MeanVarianceNormalization-13's function body, and infers nothing for GroupNormalization-21),
and so every tensor after them shapeless."""


def _same_shape_hints(model: ModelProto) -> int:
    """Give such ops' shapeless outputs their input's type; return how many were given."""
    known = {v.name: v for v in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)}
    added = 0
    for node in model.graph.node:
        if node.op_type not in _SAME_SHAPE_OPS or not node.output or node.input[0] not in known:
            continue
        out = known.get(node.output[0])
        if out is not None and out.type.tensor_type.HasField("shape"):
            continue
        if out is None:
            out = model.graph.value_info.add()
        out.name = node.output[0]
        out.type.CopyFrom(known[node.input[0]].type)
        known[out.name] = out
        added += 1
    return added


def infer_shapes(model: ModelProto, *, strict: bool = False) -> ModelProto:
    """Shape inference with data propagation, on the skeleton; shapes copied back."""
    light = skeleton(model)
    inferred = onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=strict, data_prop=True)
    if _same_shape_hints(inferred):  # then what follows those nodes is inferred too
        inferred = onnx.shape_inference.infer_shapes(inferred, check_type=True, strict_mode=strict, data_prop=True)
    weights = {init.name for init in model.graph.initializer}
    graph = model.graph
    del graph.value_info[:]
    graph.value_info.extend(v for v in inferred.graph.value_info if v.name not in weights)
    outputs = {v.name: v for v in inferred.graph.output}
    for out in graph.output:
        if out.name in outputs:
            out.CopyFrom(outputs[out.name])
    return model


def weight_bytes(model: ModelProto) -> int:
    """Bytes held by initializers; protobuf's own ByteSize fails above 2 GiB."""
    return sum(stored_nbytes(init) for init in model.graph.initializer)
