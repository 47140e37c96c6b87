"""Refuse graphs that ask for absurd tensors, from inferred shapes, before anything runs."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, numpy_helper

from .errors import InvalidModel, ModelTooLarge
from .graph import initializer_map, producers, real_inputs, static_shape, value_infos
from .limits import ImportLimits

_STAGE = "bounds"
# Ops whose output shape is read from a tensor input: checked from that tensor's value
# too, in case shape inference could not conclude.
_SHAPE_FROM_INPUT = {"ConstantOfShape": 0, "Expand": 1}
_FLOAT_TYPES = (1, 10, 11, 16)


def check_bounds(model: ModelProto, limits: ImportLimits = ImportLimits()) -> None:
    graph = model.graph
    made_by = producers(graph)
    computed = input_dependent(graph)
    total = 0
    for name, value in value_infos(model).items():
        if not value.type.HasField("tensor_type"):
            continue
        shape = static_shape(value)
        if shape is None:
            continue
        origin = made_by.get(name)
        where = f" (made by {origin.op_type} node {origin.name!r})" if origin is not None else ""
        if any(d == 0 for d in shape) and name in computed and value.type.tensor_type.elem_type in _FLOAT_TYPES:
            raise InvalidModel(f"tensor {name!r}{where} has a zero-size dimension: shape {list(shape)}", stage=_STAGE)
        nbytes = _nbytes(shape, value.type.tensor_type.elem_type)
        _refuse_if_big(name, where, shape, nbytes, limits)
        total += nbytes
    if total > limits.max_total_activation_bytes:
        raise ModelTooLarge(
            f"one forward pass would hold {total:,} bytes of intermediate tensors; "
            f"the limit is {limits.max_total_activation_bytes:,}",
            stage=_STAGE,
        )
    _check_shape_inputs(model, limits)


def input_dependent(graph) -> set[str]:
    """Tensors computed from a graph input: activations. An empty one means the model computes nothing.

    Empty constants are legitimate ONNX (Resize's unused `roi`, omitted optional
    inputs, paddle2onnx's helper tensors) and are not refused."""
    found = {value.name for value in real_inputs(graph)}
    for node in graph.node:
        if any(name in found for name in node.input if name):
            found.update(out for out in node.output if out)
    return found


def _check_shape_inputs(model: ModelProto, limits: ImportLimits) -> None:
    weights = initializer_map(model.graph)
    for node in model.graph.node:
        index = _SHAPE_FROM_INPUT.get(node.op_type)
        if index is None or len(node.input) <= index or node.input[index] not in weights:
            continue
        shape = numpy_helper.to_array(weights[node.input[index]]).astype(np.float64).ravel()
        if np.any(shape < -1):
            raise InvalidModel(f"{node.op_type} node {node.name!r} asks for shape {shape.astype(np.int64).tolist()}", stage=_STAGE)
        nbytes = float(np.prod(np.maximum(shape, 1))) * 4
        _refuse_if_big(node.output[0], f" (made by {node.op_type} node {node.name!r})", tuple(shape.astype(np.int64)), nbytes, limits)


def _refuse_if_big(name: str, where: str, shape, nbytes: float, limits: ImportLimits) -> None:
    if nbytes > limits.max_tensor_bytes:
        elements = float(np.prod(np.asarray(shape, dtype=np.float64)))
        raise ModelTooLarge(
            f"tensor {name!r}{where} would have shape {list(shape)} = {elements:.3g} elements "
            f"({nbytes:,.0f} bytes); the limit for one tensor is {limits.max_tensor_bytes:,} bytes",
            stage=_STAGE,
        )


def _nbytes(shape: tuple[int, ...], elem_type: int) -> float:
    itemsize = 8 if elem_type in (7, 11, 13) else 4  # int64, double, uint64
    return float(np.prod(np.asarray(shape, dtype=np.float64))) * itemsize
