"""Fold BatchNormalization into the Conv, ConvTranspose or Gemm before it.

Activation maximization runs the network in inference mode, where BN is a fixed
per-channel affine map; folding it into the weights (as the paper does) removes a
layer and keeps the graph small. The folded node takes over the BN's output name, so
the layer stays addressable. A BN with no single-use producer to fold into becomes
an explicit Mul + Add with the same output name.

Folded weights of VALUES_UNREAD_FROM_BYTES or more may go to an `unwritten` dict instead of
the graph, their initializers left with shape and type but no bytes: the converter builds the
torch module over those arrays, and the ONNX graph gets their bytes only when someone wants it
whole (`ImportedModel.graph`: recording through onnxruntime). Writing them into protobuf
and reading them back out cost two more copies of every folded weight, into fresh pages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, numpy_helper

from .errors import UnsupportedModel
from .graph import INTERNAL_PREFIX, VALUES_UNREAD_FROM_BYTES, initializer_map, producers, static_shape, value_infos

_STAGE = "fold"


@dataclass(frozen=True)
class FoldReport:
    folded: int
    remaining: int
    """BNs turned into a per-channel affine (Mul + Add) because they could not be folded."""


class _Index:
    """Who produces a tensor, how many nodes read it, the initializers and the names taken: built once and kept
    current as BNs go (rebuilding them per BN made folding a 36-BN network quadratic)."""

    def __init__(self, graph: GraphProto, unwritten: dict[str, np.ndarray] | None) -> None:
        self.graph = graph
        self.unwritten = unwritten
        self.producers = producers(graph)
        self.readers = Counter(name for node in graph.node for name in node.input if name)
        self.weights = initializer_map(graph)
        self.taken = set(self.weights) | {out for node in graph.node for out in node.output}
        self.outputs = {out.name for out in graph.output}

    def fresh(self, name: str) -> str:
        candidate, suffix = name, 1
        while candidate in self.taken:
            suffix += 1
            candidate = f"{name}.{suffix}"
        self.taken.add(candidate)
        return candidate

    def add_weight(self, array: np.ndarray, name: str) -> None:
        """Written into the graph in place (from_array() then append() would copy the weight twice more), or, when
        large and `unwritten` is given, kept there and left out of the graph (see the module docstring)."""
        array = np.ascontiguousarray(array)
        later = self.unwritten is not None and array.nbytes >= VALUES_UNREAD_FROM_BYTES
        if later:
            self.unwritten[name] = array
        self.weights[name] = self.graph.initializer.add(
            name=name, data_type=onnx.helper.np_dtype_to_tensor_dtype(array.dtype), dims=array.shape,
            raw_data=b"" if later else array.tobytes())

    def add_node(self, node: NodeProto, index: int) -> None:
        self.graph.node.insert(index, node)
        self.producers.update({out: node for out in node.output if out})
        self.readers.update(name for name in node.input if name)

    def remove_node(self, node: NodeProto) -> None:
        self.readers.subtract(name for name in node.input if name)
        self.graph.node.remove(node)

    def rewire(self, node: NodeProto, inputs: list[str]) -> None:
        self.readers.subtract(name for name in node.input if name)
        del node.input[:]
        node.input.extend(inputs)
        self.readers.update(name for name in inputs if name)


def fold_batchnorm(model: ModelProto, unwritten: dict[str, np.ndarray] | None = None) -> FoldReport:
    """Fold every BN the graph has; `unwritten`, when given, takes the large folded weights (module docstring)."""
    graph = model.graph
    index = _Index(graph, unwritten)
    folded = affine = 0
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        stats = _bn_stats(bn, index.weights)
        if stats is None:
            raise UnsupportedModel(
                f"BatchNormalization {bn.name!r} takes its statistics from computed tensors, not weights",
                stage=_STAGE,
            )
        producer = _foldable_producer(index, bn)
        if producer is not None and _fold_into(index, producer, bn, *stats):
            folded += 1
        else:
            _to_affine(model, index, bn, *stats)
            affine += 1
    return FoldReport(folded=folded, remaining=affine)


def _bn_stats(bn: NodeProto, weights):
    names = list(bn.input[1:5])
    if len(names) != 4 or any(name not in weights for name in names):
        return None
    gamma, beta, mean, var = (numpy_helper.to_array(weights[name]).astype(np.float64) for name in names)
    eps = next((attr.f for attr in bn.attribute if attr.name == "epsilon"), 1e-5)
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _foldable_producer(index: _Index, bn: NodeProto) -> NodeProto | None:
    """The Conv/ConvTranspose/Gemm whose output only this BN reads, with weight initializers."""
    source = bn.input[0]
    node = index.producers.get(source)
    if node is None or node.op_type not in ("Conv", "ConvTranspose", "Gemm"):
        return None
    if index.readers[source] != 1 or source in index.outputs:
        return None
    if any(len(bn.output) > 1 and out for out in bn.output[1:]):
        return None
    if not all(name in index.weights for name in node.input[1:] if name):
        return None
    return node


def _fold_into(index: _Index, node: NodeProto, bn: NodeProto, scale: np.ndarray, shift: np.ndarray) -> bool:
    weights = index.weights
    attrs = {attr.name: attr for attr in node.attribute}
    w = numpy_helper.to_array(weights[node.input[1]])
    w = w.astype(np.promote_types(w.dtype, np.float32), copy=False)  # scaled in its own precision: one rounding
    scale_w = scale.astype(w.dtype)
    has_bias = len(node.input) > 2 and node.input[2] != ""
    channels = scale.shape[0]
    if node.op_type == "Conv":
        if w.shape[0] != channels:
            return False
        w = w * scale_w.reshape(-1, *[1] * (w.ndim - 1))
        bias = numpy_helper.to_array(weights[node.input[2]]).astype(np.float64) if has_bias else 0.0
    elif node.op_type == "ConvTranspose":
        group = attrs["group"].i if "group" in attrs else 1
        if w.shape[1] * group != channels:
            return False
        grouped = w.reshape(group, w.shape[0] // group, w.shape[1], *w.shape[2:])
        grouped = grouped * scale_w.reshape(group, 1, w.shape[1], *[1] * (w.ndim - 2))
        w = grouped.reshape(w.shape)
        bias = numpy_helper.to_array(weights[node.input[2]]).astype(np.float64) if has_bias else 0.0
    else:
        w, bias = _gemm_terms(node, attrs, w, weights, has_bias, channels)
        if w is None:
            return False
        w = w * scale_w.reshape(1, -1) if not _flag(attrs, "transB") else w * scale_w.reshape(-1, 1)
    new_bias = bias * scale + shift
    dtype = onnx.helper.tensor_dtype_to_np_dtype(weights[node.input[1]].data_type)
    w_name = index.fresh(f"{bn.output[0]}.weight")
    b_name = index.fresh(f"{bn.output[0]}.bias")
    index.add_weight(w.astype(dtype, copy=False), w_name)
    index.add_weight(np.broadcast_to(new_bias, (channels,)).astype(dtype), b_name)
    index.rewire(node, [node.input[0], w_name, b_name])
    if node.op_type == "Gemm":
        _set_float(node, "beta", 1.0)
    del index.producers[node.output[0]]
    node.output[0] = bn.output[0]
    index.producers[bn.output[0]] = node
    index.remove_node(bn)
    return True


def _gemm_terms(node, attrs, w, weights, has_bias, channels):
    """Gemm's B (with alpha folded in) and its bias as a [N] vector, or (None, None)."""
    if w.ndim != 2 or (w.shape[0] if _flag(attrs, "transB") else w.shape[1]) != channels:
        return None, None
    alpha = attrs["alpha"].f if "alpha" in attrs else 1.0
    beta = attrs["beta"].f if "beta" in attrs else 1.0
    bias = np.zeros(channels)
    if has_bias:
        c = numpy_helper.to_array(weights[node.input[2]]).astype(np.float64)
        if c.size not in (1, channels) or (c.ndim == 2 and c.shape[0] != 1):
            return None, None
        bias = np.broadcast_to(beta * c.reshape(-1), (channels,))
    _set_float(node, "alpha", 1.0)
    return w * alpha, bias


def _to_affine(model: ModelProto, index: _Index, bn: NodeProto, scale: np.ndarray, shift: np.ndarray) -> None:
    graph = model.graph
    infos = value_infos(model)
    shape = static_shape(infos[bn.input[0]]) if bn.input[0] in infos else None
    if shape is None:
        raise UnsupportedModel(f"BatchNormalization {bn.name!r}: the rank of its input is unknown", stage=_STAGE)
    dtype = np.float32
    broadcast = (-1, *[1] * (len(shape) - 2))
    s_name = index.fresh(f"{INTERNAL_PREFIX}{bn.output[0]}.scale")
    t_name = index.fresh(f"{INTERNAL_PREFIX}{bn.output[0]}.shift")
    mid = index.fresh(f"{INTERNAL_PREFIX}{bn.output[0]}.scaled")
    index.add_weight(scale.reshape(broadcast).astype(dtype), s_name)
    index.add_weight(shift.reshape(broadcast).astype(dtype), t_name)
    mul = onnx.helper.make_node("Mul", [bn.input[0], s_name], [mid], name=f"{bn.name or bn.output[0]}/scale")
    add = onnx.helper.make_node("Add", [mid, t_name], [bn.output[0]], name=bn.name or bn.output[0])
    position = list(graph.node).index(bn)
    index.remove_node(bn)
    index.add_node(add, position)
    index.add_node(mul, position)


def _flag(attrs, name: str) -> bool:
    return name in attrs and attrs[name].i == 1


def _set_float(node: NodeProto, name: str, value: float) -> None:
    for attr in node.attribute:
        if attr.name == name:
            node.attribute.remove(attr)
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))

