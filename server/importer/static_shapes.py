"""Fix every graph input's shape from the caller's declarations, and forget file-declared shapes.

Symbolic dims (`batch`, `p2o.DynamicDimension.0`, unnamed) become the declared integers;
an undeclared symbolic batch dim becomes 1. Intermediate `value_info` is dropped so
shapes are always re-inferred: some exporters write wrong ones.
"""

from __future__ import annotations

from onnx import ModelProto

from .errors import InvalidModel
from .graph import real_inputs
from .inputs import InputSpec

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
            if dim.HasField("dim_value") and dim.dim_value not in (0, size):
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
