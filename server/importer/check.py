"""Validate a parsed model: known ops, onnx.checker (full), and sane declared shapes."""

from __future__ import annotations

import onnx
from onnx import ModelProto, defs

from .errors import InvalidModel, ModelTooLarge, UnsupportedModel
from .graph import skeleton
from .limits import ImportLimits

_STAGE = "check"
DYNAMIC_DIM = -1
"""What paddle2onnx (and some hand-written graphs) write for a dimension fixed only at run time."""
_STANDARD_DOMAINS = ("", "ai.onnx")


def check_model(model: ModelProto, limits: ImportLimits = ImportLimits()) -> None:
    """Raise a clear error for anything that is not a well-formed ONNX graph we can import."""
    graph = model.graph
    if len(graph.node) > limits.max_nodes:
        raise ModelTooLarge(f"the graph has {len(graph.node):,} nodes; the limit is {limits.max_nodes:,}", stage=_STAGE)
    _check_opset(model)
    _check_known_ops(model)
    _check_declared_inputs(model, limits)
    _check_outputs_are_computed(model)
    light = skeleton(model)
    try:
        onnx.checker.check_model(light, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        if not _fails_in_standard_function_body(light, str(exc)):
            raise InvalidModel(f"onnx.checker refused the model: {_first_lines(str(exc))}", stage=_STAGE) from None
        onnx.checker.check_model(light)  # the graph itself, without expanding ONNX's function bodies


def _fails_in_standard_function_body(model: ModelProto, message: str) -> bool:
    """Whether strict inference failed inside the body ONNX's own schema gives a standard op.

    onnx 1.23 expands MeanVarianceNormalization-13 into a Constant that its own strict
    inference then rejects; that says nothing about the model, which onnxruntime runs."""
    opsets = {entry.domain or "": entry.version for entry in model.opset_import}
    for node in model.graph.node:
        if node.domain not in _STANDARD_DOMAINS or f"(op_type:{node.op_type}): [ShapeInferenceError] " \
                f"Inference error(s): (op_type:" not in message:
            continue
        try:
            schema = defs.get_schema(node.op_type, max_inclusive_version=opsets.get("", 1))
        except defs.SchemaError:
            continue
        if schema.has_function:
            return True
    return False


def _check_opset(model: ModelProto) -> None:
    newest = defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in _STANDARD_DOMAINS and not 1 <= entry.version <= newest:
            raise InvalidModel(
                f"the model declares opset {entry.version}; this onnx knows opsets 1..{newest}", stage=_STAGE
            )


def _check_known_ops(model: ModelProto) -> None:
    """List every op that does not exist at all, not just the first."""
    unknown: dict[str, list[str]] = {}
    local_functions = {(f.domain, f.name) for f in model.functions}
    for index, node in enumerate(model.graph.node):
        domain = node.domain
        if (domain, node.op_type) in local_functions:
            continue
        if domain in _STANDARD_DOMAINS and defs.has(node.op_type, ""):
            continue
        if domain not in _STANDARD_DOMAINS and defs.has(node.op_type, domain):
            continue
        label = f"{domain}::{node.op_type}" if domain not in _STANDARD_DOMAINS else node.op_type
        unknown.setdefault(label, []).append(node.name or f"#{index}")
    if unknown:
        listed = "; ".join(f"{op} (nodes: {', '.join(nodes[:5])}{' ...' if len(nodes) > 5 else ''})" for op, nodes in unknown.items())
        raise UnsupportedModel(f"the graph uses ops that ONNX does not define: {listed}", stage=_STAGE)


def _check_declared_inputs(model: ModelProto, limits: ImportLimits) -> None:
    for value in model.graph.input:
        if not value.type.HasField("tensor_type"):
            raise InvalidModel(f"input {value.name!r} is not a tensor", stage=_STAGE)
        dims = value.type.tensor_type.shape.dim
        if len(dims) > limits.max_rank:
            raise InvalidModel(f"input {value.name!r} has rank {len(dims)}; at most {limits.max_rank}", stage=_STAGE)
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value == 0:
                raise InvalidModel(f"input {value.name!r} has a zero-size dimension {axis}", stage=_STAGE)
            if dim.HasField("dim_value") and dim.dim_value < DYNAMIC_DIM:
                raise InvalidModel(f"input {value.name!r} declares dimension {axis} as {dim.dim_value}; a dimension "
                                   f"is ≥ 1, or -1 or a name for one fixed at import", stage=_STAGE)
            if dim.HasField("dim_value") and not DYNAMIC_DIM <= dim.dim_value <= limits.max_dim:
                raise ModelTooLarge(
                    f"input {value.name!r} declares a dimension of {dim.dim_value:,}; at most {limits.max_dim:,}",
                    stage=_STAGE,
                )


def _check_outputs_are_computed(model: ModelProto) -> None:
    """A graph output must come out of a node: one that is an input or a weight has no layer to convert."""
    given = {value.name for value in model.graph.input} | {tensor.name for tensor in model.graph.initializer}
    passed = [value.name for value in model.graph.output if value.name in given]
    if passed:
        raise InvalidModel(f"graph output(s) {', '.join(map(repr, passed))} are inputs or weights, not computed by any node",
                           stage=_STAGE)


def _first_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:count])
