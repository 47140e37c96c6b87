"""Fix every graph input's shape from the caller's declarations, and forget file-declared shapes.

Symbolic dims (`batch`, `p2o.DynamicDimension.0`, unnamed, or paddle2onnx's -1) become the declared integers;
an undeclared symbolic batch dim becomes 1. Intermediate `value_info` is dropped so
shapes are always re-inferred: some exporters write wrong ones.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, numpy_helper

from .constants import fold_constants
from .errors import InvalidModel
from .graph import infer_shapes, real_inputs, skeleton, static_shape, value_infos
from .inputs import InputSpec
from .limits import ImportLimits

_STAGE = "shapes"


def make_static(model: ModelProto, declared: dict[str, InputSpec]) -> dict[str, InputSpec]:
    """Write static dims into the graph inputs; return one spec per input with its shape."""
    graph = model.graph
    inputs = real_inputs(graph)
    names = [value.name for value in inputs]
    for name in declared:
        if name not in names:
            raise InvalidModel(f"no graph input is named {name!r}; the inputs are {', '.join(names)}", stage=_STAGE)
    resolved: dict[str, InputSpec] = {}
    for value in inputs:
        spec = declared.get(value.name, InputSpec(name=value.name))
        shape = _resolve(value, spec)
        for dim, size in zip(value.type.tensor_type.shape.dim, shape):
            dim.Clear()
            dim.dim_value = size
        resolved[value.name] = spec.with_(shape=shape)
    del graph.value_info[:]
    for out in graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
    return resolved


def _resolve(value, spec: InputSpec) -> tuple[int, ...]:
    if not value.type.tensor_type.HasField("shape"):
        if spec.shape is None:
            raise InvalidModel(f"input {value.name!r} has no declared shape; declare it as {value.name}=1x3x224x224", stage=_STAGE)
        for _ in spec.shape:
            value.type.tensor_type.shape.dim.add()
        return spec.shape
    dims = value.type.tensor_type.shape.dim
    if spec.shape is not None:
        if len(spec.shape) != len(dims):
            raise InvalidModel(
                f"input {value.name!r} has rank {len(dims)} but was declared with shape {_fmt(spec.shape)}", stage=_STAGE
            )
        for axis, (dim, size) in enumerate(zip(dims, spec.shape)):
            if size <= 0:
                raise InvalidModel(f"input {value.name!r}: dimension {axis} is declared as {size}; dims must be ≥ 1", stage=_STAGE)
            if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != size:
                raise InvalidModel(
                    f"input {value.name!r}: dimension {axis} is {dim.dim_value} in the graph but declared as {size}",
                    stage=_STAGE,
                )
        return tuple(spec.shape)
    shape = []
    dynamic = []
    for axis, dim in enumerate(dims):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(dim.dim_value)
        elif dim.HasField("dim_value") and dim.dim_value == 0:
            raise InvalidModel(f"input {value.name!r} has a zero-size dimension {axis}", stage=_STAGE)
        elif axis == 0:
            shape.append(1)
        else:
            dynamic.append(f"{axis} ({dim.dim_param or '?'})")
            shape.append(-1)
    if dynamic:
        raise InvalidModel(
            f"input {value.name!r} has dynamic dims {', '.join(dynamic)}; declare its shape, e.g. "
            f"--input {value.name}={_fmt(tuple(s if s > 0 else 224 for s in shape))}",
            stage=_STAGE,
        )
    return tuple(shape)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def complete_shapes(model: ModelProto, limits: ImportLimits = ImportLimits()) -> int:
    """Fill in shapes that inference left open because a reshape target is computed from `Shape`.

    paddle2onnx (and others) compute Reshape targets as Shape → Slice → Concat; onnx's
    data propagation does not always follow that, so the Reshape and everything after
    it stays shapeless and the catalog cannot describe those layers. With the input
    shapes fixed, each Shape is known: a copy with Shape folded is inferred, and the
    shapes it finds are added to the graph's value_info. The graph itself keeps its
    Shape nodes, so the converted module still follows the batch size it is run at.
    Returns how many tensors gained a shape.
    """
    infos = value_infos(model)
    missing = [name for node in model.graph.node for name in node.output
               if name and (name not in infos or static_shape(infos[name]) is None)]
    if not missing or not any(node.op_type == "Shape" for node in model.graph.node):
        return 0
    copy = skeleton(model)
    _fold_shapes(copy)
    fold_constants(copy, limits)
    try:
        infer_shapes(copy)
    except Exception:  # noqa: BLE001 - a hint only: without it the catalog just knows less
        return 0
    found = value_infos(copy)
    graph_outputs = {out.name: out for out in model.graph.output}
    added = 0
    for name in missing:
        value = found.get(name)
        if value is None or static_shape(value) is None:
            continue
        if name in graph_outputs:
            graph_outputs[name].CopyFrom(value)
        else:
            known = infos.get(name)
            if known is not None and known in model.graph.value_info:
                model.graph.value_info.remove(known)
            model.graph.value_info.append(value)
        added += 1
    return added


def _fold_shapes(model: ModelProto) -> None:
    """Replace every Shape of a statically shaped tensor by a Constant (on a copy)."""
    shapes = {name: static_shape(value) for name, value in value_infos(model).items()}
    for node in model.graph.node:
        shape = shapes.get(node.input[0]) if node.op_type == "Shape" and node.input else None
        if shape is None:
            continue
        attrs = {a.name: a.i for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        value = np.asarray(shape[slice(start, end)], dtype=np.int64)
        node.op_type = "Constant"
        del node.input[:]
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("value", numpy_helper.from_array(value)))
