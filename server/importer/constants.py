"""Turn weights stored as Constant nodes, or behind Identity/Cast/Reshape, into initializers.

onnx2torch reads conv and gemm weights from initializers only; exporters also write
them as Constant nodes or compute them from constants. Small constant subgraphs are
evaluated here once with onnx's reference evaluator.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, numpy_helper
from onnx.reference import ReferenceEvaluator

from .graph import initializer_map, static_shape, value_infos
from .limits import ImportLimits

# Ops cheap and deterministic enough to evaluate at import time.
FOLDABLE = {
    "Identity", "Cast", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Concat",
    "Add", "Sub", "Mul", "Div", "Neg", "Sqrt", "Reciprocal", "Abs", "Exp", "Pow",
    "Gather", "Slice", "Shape", "Size", "Expand", "Tile", "ConstantOfShape", "Range",
    "DequantizeLinear", "Split", "Clip", "Min", "Max", "Equal", "Where", "Not",
}
# Ops whose output can be far larger than their inputs: folded only when shape
# inference has bounded the output.
GROWING = {"ConstantOfShape", "Expand", "Tile", "Range"}


def fold_constants(model: ModelProto, limits: ImportLimits = ImportLimits()) -> int:
    """Fold Constant nodes and constant subgraphs into initializers; return how many nodes went."""
    graph = model.graph
    outputs = {out.name for out in graph.output}
    known = initializer_map(graph)
    opset = {entry.domain: entry.version for entry in model.opset_import}
    shapes = {name: static_shape(value) for name, value in value_infos(model).items()}
    kept: list[NodeProto] = []
    folded = 0
    for node in graph.node:
        values = _evaluate(node, known, shapes, opset, limits) if not outputs.intersection(node.output) else None
        if values is None:
            kept.append(node)
            continue
        for name, array in zip(node.output, values):
            tensor = numpy_helper.from_array(np.asarray(array), name)
            graph.initializer.append(tensor)
            known[name] = tensor
        folded += 1
    del graph.node[:]
    graph.node.extend(kept)
    drop_unused_initializers(model)
    return folded


def _evaluate(node: NodeProto, known, shapes, opset: dict[str, int], limits: ImportLimits):
    if node.domain not in ("", "ai.onnx") or any(attr.HasField("g") or attr.graphs for attr in node.attribute):
        return None
    if node.op_type == "Constant":
        if any(attr.name in ("sparse_value", "value_string", "value_strings") for attr in node.attribute):
            return None
    elif node.op_type not in FOLDABLE or not node.input or not all(n == "" or n in known for n in node.input):
        return None
    if node.op_type in GROWING and not _bounded(node, shapes, limits):
        return None
    if sum(len(known[n].raw_data) for n in node.input if n) > limits.max_tensor_bytes:
        return None
    feeds = {n: numpy_helper.to_array(known[n]) for n in node.input if n}
    single = onnx.helper.make_model(
        onnx.helper.make_graph(
            [node],
            "fold",
            [onnx.helper.make_tensor_value_info(n, known[n].data_type, list(known[n].dims)) for n in feeds],
            [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n],
        ),
        opset_imports=[onnx.helper.make_opsetid("", opset.get("", opset.get("ai.onnx", 17)))],
    )
    try:
        values = ReferenceEvaluator(single).run(None, feeds)
    except Exception:  # noqa: BLE001 - anything the evaluator cannot do stays a node
        return None
    if any(np.asarray(v).nbytes > limits.max_tensor_bytes for v in values):
        return None
    return values


def _bounded(node: NodeProto, shapes, limits: ImportLimits) -> bool:
    shape = shapes.get(node.output[0])
    return shape is not None and int(np.prod(shape, dtype=np.float64)) * 8 <= limits.max_tensor_bytes


def drop_unused_initializers(model: ModelProto) -> None:
    """Remove initializers nothing reads (and their entries in old-style graph inputs)."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    dropped = {init.name for init in graph.initializer if init.name not in used}
    if not dropped:
        return
    # Deleted where they stand: rebuilding the list would copy every weight that stays.
    for index in reversed([i for i, init in enumerate(graph.initializer) if init.name in dropped]):
        del graph.initializer[index]
    for index in reversed([i for i, value in enumerate(graph.input) if value.name in dropped]):
        del graph.input[index]
