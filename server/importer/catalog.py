"""Describe every layer: shape, channels, receptive field and stride per input, which inputs feed it.

Geometry is propagated through the graph op by op, for any graph: each tensor carries
a label per axis (N, C, T, H, W or unknown) and, for every graph input it depends on,
the receptive field and stride along that input's T, H and W. Convolutions and pools
grow the field by (k−1)·dilation·stride and multiply the stride; ops that collapse a
spatial axis (global pools, flatten before a fully connected layer) widen the field to
the whole extent, as for fc6 in the paper's Table 1.

Some ops make every position depend on the whole input: attention (a MatMul of two
activations, as in non-local blocks) and a globally pooled tensor broadcast back over
the map (squeeze-excitation). From there on the field along those axes is the whole
input extent, and the convolutions after do not grow it further. A reshape that
merges axes and a later one that restores the same shape (GroupNorm exported as
Reshape → InstanceNormalization → Reshape, the flattening around attention) give the
axes back their meaning.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

from onnx import ModelProto, NodeProto, numpy_helper

from kinetoscope.common import APPEARANCE_KINDS, MOTION_KINDS, STACKED_FLOW_KINDS, Layer

from .graph import INTERNAL_PREFIX, initializer_map, static_shape, value_infos
from .inputs import InputSpec

_LOGGER = logging.getLogger(__name__)
_WINDOW_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")
_GLOBAL_OPS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
_REDUCE_OPS = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL1", "ReduceL2", "ReduceProd",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_FLOAT_TYPES = (1, 10, 11, 16)
_BROADCAST_OPS = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Where", "PRelu")
_ATTENTION_OPS = ("MatMul", "Einsum")
_RESHAPE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
WHOLE = math.inf
"""The receptive field of an axis every position of which the unit depends on; reported as the input's extent."""


@dataclass
class _Geometry:
    labels: list[str | None]
    sources: dict[str, dict[str, list[float]]]  # input → label → [receptive field, stride]
    merged: _Merged | None = None
    """The axes a reshape merged, kept until a reshape restores their shape."""


@dataclass
class _Merged:
    shape: tuple[int, ...]
    labels: list[str | None]
    sources: dict[str, dict[str, list[float]]]


def build_catalog(model: ModelProto, inputs: list[InputSpec]) -> list[Layer]:
    shapes = {name: static_shape(value) for name, value in value_infos(model).items()}
    types = {name: value.type.tensor_type.elem_type for name, value in value_infos(model).items()}
    weights = initializer_map(model.graph)
    geometry = {spec.name: _input_geometry(spec) for spec in inputs}
    extents = {spec.name: _extents(spec) for spec in inputs}
    kinds = {spec.name: spec.kind for spec in inputs}
    order = [spec.name for spec in inputs]
    layers: list[Layer] = []
    for node in model.graph.node:
        known = [_broadcast(geometry[name], shapes.get(name), shapes.get(node.output[0]), node.op_type)
                 for name in node.input if name in geometry]
        if not known:
            continue
        for index, out in enumerate(node.output):
            if not out:
                continue
            try:
                geo = _propagate(node, index, known, shapes, weights)
            except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
                _LOGGER.debug("catalog: cannot follow %s node %r (%s); its axes are unknown", node.op_type, node.name, exc)
                geo = _unknown(known, shapes.get(out))
            geometry[out] = geo
            layer = _layer(node, out, geo, shapes.get(out), types.get(out), kinds, order, extents)
            if layer is not None:
                layers.append(layer)
    return layers


def _extents(spec: InputSpec) -> dict[str, float]:
    """The whole input along each of its T, H and W axes (stacked flow: its fields along T)."""
    axes = {label: float(size) for label, size in zip(spec.layout, spec.shape) if label in ("T", "H", "W")}
    if spec.kind in STACKED_FLOW_KINDS:
        axes["T"] = float(spec.shape[spec.layout.index("C")] // 2)
    return axes


def _broadcast(geo: _Geometry, in_shape, out_shape, op: str) -> _Geometry:
    """An input whose spatial axis is 1 where the output's is larger has collapsed that axis (a global pool):
    broadcast back over the map, every position depends on the whole input along it."""
    if op not in _BROADCAST_OPS or in_shape is None or out_shape is None or len(in_shape) != len(out_shape):
        return geo
    collapsed = [label for label, n, m in zip(geo.labels, in_shape, out_shape)
                 if label in ("T", "H", "W") and n == 1 and m > 1]
    if not collapsed:
        return geo
    sources = copy.deepcopy(geo.sources)
    for per_input in sources.values():
        for label in collapsed:
            if label in per_input:
                per_input[label][0] = WHOLE
    return _Geometry(labels=list(geo.labels), sources=sources, merged=geo.merged)


def _input_geometry(spec: InputSpec) -> _Geometry:
    labels = [letter if letter != "?" else None for letter in spec.layout]
    if spec.kind in STACKED_FLOW_KINDS:
        fields = spec.shape[spec.layout.index("C")] // 2
        axes = {"T": [float(fields), float(fields)]}  # every field is seen by the first conv
    else:
        axes = {}
    axes.update({label: [1.0, 1.0] for label in labels if label in ("T", "H", "W")})
    return _Geometry(labels=labels, sources={spec.name: axes})


def _propagate(node: NodeProto, index: int, known: list[_Geometry], shapes, weights) -> _Geometry:
    first = known[0]
    in_shape = shapes.get(node.input[0])
    out_shape = shapes.get(node.output[index])
    sources = _merge(known)
    labels = list(first.labels)
    op = node.op_type
    attrs = {a.name: a for a in node.attribute}
    merged = next((geo.merged for geo in known if geo.merged is not None), None)
    if op in _ATTENTION_OPS and len(known) > 1:  # positions attend to each other
        for per_input in sources.values():
            for label in per_input:
                per_input[label][0] = WHOLE
    if op in _RESHAPE_OPS and merged is not None and out_shape is not None and tuple(out_shape) == merged.shape:
        return _Geometry(labels=list(merged.labels), sources=_restore(merged.sources, sources))
    if op in _RESHAPE_OPS and in_shape and out_shape and len(in_shape) == len(labels):
        before = _Merged(tuple(in_shape), list(labels), copy.deepcopy(sources))
        labels = _regroup(labels, sources, in_shape, out_shape)
        if merged is None and any(l in ("T", "H", "W") for l in before.labels) and \
                not set(before.labels) & {"T", "H", "W"} <= set(labels):
            merged = before
        if out_shape is not None and len(out_shape) != len(labels):
            labels = [None] * len(out_shape)
        return _Geometry(labels=labels, sources=sources, merged=merged)
    if op in _WINDOW_OPS or op in _GLOBAL_OPS:
        merged = None
    if op in _WINDOW_OPS:
        _window(node, attrs, labels, sources, weights)
    elif op in _GLOBAL_OPS:
        _widen(sources, labels, in_shape, [i for i, l in enumerate(labels) if l in ("T", "H", "W")])
    elif op in _REDUCE_OPS:
        axes = _reduce_axes(node, attrs, weights, len(labels))
        _widen(sources, labels, in_shape, axes)
        if "keepdims" in attrs and attrs["keepdims"].i == 0:
            labels = [l for i, l in enumerate(labels) if i not in axes]
    elif op == "Transpose":
        perm = list(attrs["perm"].ints) if "perm" in attrs else list(reversed(range(len(labels))))
        if sorted(perm) == list(range(len(labels))):
            labels = [labels[p] for p in perm]
        else:  # the input's rank is not what the labels say (a reshape of unknown shape before)
            labels = [None] * len(perm)
    elif op in ("Gemm", "MatMul"):
        _widen(sources, labels, in_shape, [len(labels) - 1])
        if op == "MatMul":  # attention scores (activation × activation) index positions, not channels
            labels = labels[:-1] + [known[1].labels[-1] if len(known) > 1 and known[1].labels else "C"]
        else:
            labels = ["N", "C"]
    elif op in _RESHAPE_OPS:  # axes regrouped in a way the shapes do not tell
        labels = [None] * (len(out_shape) if out_shape is not None else len(labels))
    elif op == "Slice":
        _slice(node, labels, sources, weights)
    elif op in ("Resize", "Upsample") and in_shape and out_shape:
        for axis, label in enumerate(labels):
            if label in ("T", "H", "W") and in_shape[axis] != out_shape[axis]:
                _scale_stride(sources, label, in_shape[axis] / out_shape[axis])
    if out_shape is not None and len(out_shape) != len(labels):
        labels = [None] * len(out_shape)
    return _Geometry(labels=labels, sources=sources, merged=merged)


def _restore(before: dict, now: dict) -> dict[str, dict[str, list[float]]]:
    """The fields from before the merge, except axes that became whole while merged (attention)."""
    restored = copy.deepcopy(before)
    for name, axes in now.items():
        target = restored.setdefault(name, {})
        for label, (rf, stride) in axes.items():
            if rf == WHOLE or label not in target:
                target[label] = [rf, target.get(label, [rf, stride])[1]]
    return restored


def _unknown(known: list[_Geometry], out_shape) -> _Geometry:
    """What a node the catalog cannot follow leaves: the same inputs, no axis with a known meaning."""
    rank = len(out_shape) if out_shape is not None else len(known[0].labels)
    return _Geometry(labels=[None] * rank, sources=_merge(known))


def _window(node, attrs, labels, sources, weights) -> None:
    if len(labels) >= 3:  # a window op's layout is N, C, spatial..., whatever reshapes came before
        labels[0], labels[1] = labels[0] or "N", "C"
    spatial = labels[2:]
    if "kernel_shape" in attrs:
        kernel = list(attrs["kernel_shape"].ints)
    elif len(node.input) > 1 and node.input[1] in weights:
        kernel = list(weights[node.input[1]].dims[2:])
    else:
        return
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(kernel)
    dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * len(kernel)
    transposed = node.op_type == "ConvTranspose"
    for label, k, s, d in zip(spatial, kernel, strides, dilations):
        if label is None:
            continue
        for axes in sources.values():
            if label not in axes:
                continue
            rf, stride = axes[label]
            if transposed:
                axes[label] = [rf + (math.ceil(k / s) - 1) * stride, stride / s]
            else:
                axes[label] = [rf + (k - 1) * d * stride, stride * s]


def _widen(sources, labels, shape, axes: list[int]) -> None:
    """The axes collapse: a unit now sees their whole extent."""
    if shape is None:
        return
    for axis in axes:
        label = labels[axis] if axis < len(labels) else None
        for per_input in sources.values():
            if label in per_input and shape[axis] > 1:
                rf, stride = per_input[label]
                per_input[label] = [rf + (shape[axis] - 1) * stride, stride * shape[axis]]


def _regroup(labels, sources, in_shape, out_shape) -> list[str | None]:
    """Match reshaped axes to the axes they came from, in groups whose sizes multiply to the same.

    An axis kept whole keeps its label; merged or split axes have no single meaning, and
    a spatial axis among them collapses (a unit sees all of it). A channel axis split
    into groups (a channel shuffle) leaves the spatial axes beside it as they were.
    """
    spatial = ("T", "H", "W")
    in_axes = [k for k, size in enumerate(in_shape) if size != 1]
    out_axes = [k for k, size in enumerate(out_shape) if size != 1]
    result: list[str | None] = [None] * len(out_shape)
    ones_in = [labels[k] for k, size in enumerate(in_shape) if size == 1]
    ones_out = [k for k, size in enumerate(out_shape) if size == 1]
    if len(ones_in) == len(ones_out):
        for k, label in zip(ones_out, ones_in):
            result[k] = label
    i = j = 0
    while i < len(in_axes) and j < len(out_axes):
        group_in, group_out = [in_axes[i]], [out_axes[j]]
        size_in, size_out = in_shape[in_axes[i]], out_shape[out_axes[j]]
        i, j = i + 1, j + 1
        while size_in != size_out:
            if size_in < size_out and i < len(in_axes):
                size_in *= in_shape[in_axes[i]]
                group_in.append(in_axes[i])
                i += 1
            elif size_out < size_in and j < len(out_axes):
                size_out *= out_shape[out_axes[j]]
                group_out.append(out_axes[j])
                j += 1
            else:
                break
        if size_in != size_out:  # the element counts disagree: nothing can be matched
            _widen(sources, labels, in_shape, [a for a in in_axes if labels[a] in spatial])
            return [None] * len(out_shape)
        if len(group_in) == 1 and len(group_out) == 1:
            result[group_out[0]] = labels[group_in[0]]
        else:
            _widen(sources, labels, in_shape, [a for a in group_in if labels[a] in spatial])
    return result


def _slice(node, labels, sources, weights) -> None:
    def const(position):
        if len(node.input) > position and node.input[position] in weights:
            return numpy_helper.to_array(weights[node.input[position]]).tolist()
        return None

    axes, steps = const(3), const(4)
    if steps is None:
        return
    axes = axes if axes is not None else list(range(len(steps)))
    for axis, step in zip(axes, steps):
        label = labels[axis] if -len(labels) <= axis < len(labels) else None
        if label in ("T", "H", "W") and abs(step) > 1:
            _scale_stride(sources, label, abs(step))


def _scale_stride(sources, label: str, factor: float) -> None:
    for per_input in sources.values():
        if label in per_input:
            per_input[label][1] *= factor


def _reduce_axes(node, attrs, weights, rank: int) -> list[int]:
    if "axes" in attrs:
        axes = list(attrs["axes"].ints)
    elif len(node.input) > 1 and node.input[1] in weights:
        axes = numpy_helper.to_array(weights[node.input[1]]).tolist()
    else:
        axes = list(range(rank))
    return [a % rank for a in axes]


def _merge(known: list[_Geometry]) -> dict[str, dict[str, list[float]]]:
    merged: dict[str, dict[str, list[float]]] = {}
    for geo in known:
        for name, axes in geo.sources.items():
            target = merged.setdefault(name, {})
            for label, (rf, stride) in axes.items():
                old = target.get(label)
                target[label] = [max(rf, old[0]), max(stride, old[1])] if old else [rf, stride]
    return merged


def _layer(node: NodeProto, name: str, geo: _Geometry, shape, elem_type, kinds, order, extents) -> Layer | None:
    if name.startswith(INTERNAL_PREFIX) or shape is None or elem_type not in _FLOAT_TYPES:
        return None
    if len(shape) < 2 or len(geo.labels) != len(shape) or "C" not in geo.labels:
        return None
    streams_of = {kinds.get(source) for source in geo.sources}
    appearance = bool(streams_of & APPEARANCE_KINDS)
    motion = bool(streams_of & MOTION_KINDS)
    streams = "fusion" if appearance and motion else "motion" if motion else "appearance"
    return Layer(
        name=name,
        node=node.name,
        op_type=node.op_type,
        shape=tuple(shape),
        axes="".join(label or "?" for label in geo.labels),
        channels=shape[geo.labels.index("C")],
        inputs=tuple(name for name in order if name in geo.sources),
        streams=streams,
        receptive_field={src: {l: extents.get(src, {}).get(l, v[0]) if v[0] == WHOLE else v[0] for l, v in axes.items()}
                         for src, axes in geo.sources.items()},
        stride={src: {l: v[1] for l, v in axes.items()} for src, axes in geo.sources.items()},
    )

