"""Resize as onnxruntime computes it (every coordinate and nearest mode, antialiased downsampling), one axis at a
time with gathers."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import (
    OnnxMapping,
    OnnxToTorchModule,
    OperationConverterResult,
    get_const_value,
)
from torch import nn

from .registry import add_converter

_F32 = np.float32
_MODES = ("nearest", "linear", "cubic")
_COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                     "tf_half_pixel_for_nn", "tf_crop_and_resize")
_IDENTITY_AT_1 = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")


def _original(
    mode: str, x: torch.Tensor, scale: float, out_len: int, in_len: int, roi: tuple[float, float]
) -> torch.Tensor:
    """Source coordinate of each output position, in onnxruntime's float32 arithmetic."""
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if mode == "pytorch_half_pixel" and out_len <= 1 or mode == "align_corners" and out_len == 1:
        return torch.zeros_like(x)
    if mode == "align_corners":
        return x * float(in_len - 1) / float(out_len - 1)
    if mode == "tf_crop_and_resize":
        start, end = float(_F32(roi[0])), float(_F32(roi[1]))
        if out_len == 1:
            return torch.full_like(x, float(_F32(0.5 * (start + end) * (in_len - 1))))
        return start * float(in_len - 1) + x * float(_F32(end - start)) * float(in_len - 1) / float(out_len - 1)
    if mode == "half_pixel_symmetric":
        adjustment = _F32(out_len) / (_F32(scale) * _F32(in_len))
        offset = float(_F32(in_len) / _F32(2) * (_F32(1) - adjustment))
        return (offset + (x.double() + 0.5) / scale - 0.5).float()
    return (x + 0.5) / scale - 0.5  # half_pixel, pytorch_half_pixel


def _nearest(coord: torch.Tensor, nearest_mode: str) -> torch.Tensor:
    if nearest_mode == "floor":
        return torch.floor(coord)
    if nearest_mode == "ceil":
        return torch.ceil(coord)
    trunc = torch.trunc(coord)
    rounded = torch.where((coord - trunc).abs() == 0.5, trunc + torch.sign(coord), torch.round(coord))  # std::round
    if nearest_mode == "round_prefer_floor":
        return torch.where(coord == trunc + 0.5, torch.floor(coord), rounded)
    return rounded  # round_prefer_ceil


def _cubic_weights(t: torch.Tensor, a: float) -> list[torch.Tensor]:
    """Weights of the taps at floor(x) - 1 .. floor(x) + 2, for t = x - floor(x)."""
    d = [t + 1, t, 1 - t, 2 - t]
    near = [((a + 2) * s - (a + 3)) * s * s + 1 for s in d[1:3]]
    far = [((a * s - 5 * a) * s + 8 * a) * s - 4 * a for s in (d[0], d[3])]
    return [far[0], near[0], near[1], far[1]]


class OnnxResizeExact(nn.Module, OnnxToTorchModule):
    """Resize with onnxruntime's sizes, source coordinates, rounding and weights; differentiable in its input."""

    def __init__(self, attrs: dict, axes: Optional[list[int]], roi: Optional[list], scales: Optional[list],
                 sizes: Optional[list], static: bool) -> None:
        super().__init__()
        self.mode, self.coordinate_mode = attrs["mode"], attrs["coordinate_mode"]
        self.nearest_mode, self.cubic_a = attrs["nearest_mode"], attrs["cubic_a"]
        self.exclude_outside, self.extrapolation = attrs["exclude_outside"], attrs["extrapolation"]
        self.policy, self.antialias = attrs["policy"], attrs["antialias"]
        self.axes, self.roi, self.scales, self.sizes, self.static = axes, roi, scales, sizes, static

    def _plan(self, shape: list[int], scales: Optional[list], sizes: Optional[list]) -> tuple[list, list]:
        rank = len(shape)
        axes = [a % rank for a in self.axes] if self.axes else list(range(rank))
        out, factor = list(shape), [_F32(1)] * rank
        if sizes:
            for axis, size in zip(axes, sizes):
                out[axis], factor[axis] = int(size), _F32(size) / _F32(shape[axis])
            if self.policy != "stretch":
                common = (min if self.policy == "not_larger" else max)(factor[a] for a in axes)
                for axis in axes:
                    factor[axis] = common
                    out[axis] = int(np.floor(common * _F32(shape[axis]) + 0.5))  # std::round, positive values
        else:
            for axis, scale in zip(axes, scales):
                factor[axis] = _F32(scale)
                out[axis] = int(factor[axis] * _F32(shape[axis]))
        return out, [float(f) for f in factor]

    def forward(  # pylint: disable=missing-function-docstring
        self,
        input_tensor: torch.Tensor,
        roi: Optional[torch.Tensor] = None,
        scales: Optional[torch.Tensor] = None,
        sizes: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if not self.static:
            roi, scales, sizes = (None if t is None or t.numel() == 0 else t.tolist() for t in (roi, scales, sizes))
        else:
            roi, scales, sizes = self.roi, self.scales, self.sizes
        shape = list(input_tensor.shape)
        out, factor = self._plan(shape, scales, sizes)
        if self.mode != "nearest" and not input_tensor.is_floating_point():
            raise NotImplementedError(f"Resize in {self.mode} mode of {input_tensor.dtype} is not implemented")
        rank = len(shape)
        boxes: dict[int, tuple[float, float]] = {}
        if roi:  # tf_crop_and_resize: [starts..., ends...] of the resized axes
            half = len(roi) // 2
            boxes = {a % rank: (s, e) for a, s, e in zip(self.axes or range(rank), roi[:half], roi[half:])}
        for axis in range(rank):
            if factor[axis] == 1 and (self.mode == "nearest" or self.coordinate_mode in _IDENTITY_AT_1):
                continue  # onnxruntime copies such an axis as it is (nearest), or it maps onto itself
            box = boxes.get(axis, (0.0, 1.0))
            input_tensor = self._resize_axis(input_tensor, axis, out[axis], factor[axis], box)
        return input_tensor

    def _resize_axis(self, x: torch.Tensor, axis: int, out_len: int, scale: float, roi: tuple) -> torch.Tensor:
        in_len = x.shape[axis]
        positions = torch.arange(out_len, dtype=torch.float32, device=x.device)
        coord = _original(self.coordinate_mode, positions, scale, out_len, in_len, roi)
        view = [1] * x.dim()
        view[axis] = out_len
        if self.antialias and self.mode != "nearest" and scale < 1:
            result = self._antialiased_axis(x, axis, coord, scale)
        elif self.mode == "nearest":
            result = x.index_select(axis, _nearest(coord, self.nearest_mode).clamp(0, in_len - 1).long())
        elif self.mode == "linear":
            clamped = coord.clamp(0, in_len - 1)
            low = clamped.long().clamp(max=in_len - 1)
            high = (low + 1).clamp(max=in_len - 1)
            w_low, w_high = (clamped - high).abs(), (clamped - low).abs()
            same = low == high
            w_low = torch.where(same, 0.5, w_low).to(x.dtype).view(view)
            w_high = torch.where(same, 0.5, w_high).to(x.dtype).view(view)
            result = x.index_select(axis, low) * w_low + x.index_select(axis, high) * w_high
        else:
            floor = torch.floor(coord)
            weights = _cubic_weights(coord - floor, self.cubic_a)
            taps = [floor.long() + k - 1 for k in range(4)]
            if self.exclude_outside:
                weights = [torch.where((t >= 0) & (t < in_len), w, 0.0) for t, w in zip(taps, weights)]
                total = sum(weights)
                weights = [w / total for w in weights]
            result = sum(
                x.index_select(axis, t.clamp(0, in_len - 1)) * w.to(x.dtype).view(view) for t, w in zip(taps, weights)
            )
        if self.coordinate_mode == "tf_crop_and_resize":
            outside = ((coord < 0) | (coord > in_len - 1)).view(view)
            result = torch.where(outside, torch.full_like(result, self.extrapolation), result)
        return result


    def _antialiased_axis(self, x: torch.Tensor, axis: int, coord: torch.Tensor, scale: float) -> torch.Tensor:
        """Downsampling with the filter stretched by 1 / scale, so every input sample contributes.

        Each output is a normalized weighted sum of the inputs within support / scale of its
        source coordinate (support 1 for linear's triangle, 2 for cubic); taps past the ends
        take the edge value, or are dropped with exclude_outside. One dense [out, in] matrix."""
        in_len = x.shape[axis]
        support = 1.0 if self.mode == "linear" else 2.0
        reach = int(np.ceil(support / scale)) + 1
        offsets = torch.arange(-reach, reach + 1, device=x.device)
        taps = torch.floor(coord).long()[:, None] + offsets[None, :]
        distance = ((taps.double() - coord.double()[:, None]) * scale).abs()
        if self.mode == "linear":
            weights = (1.0 - distance).clamp(min=0.0)
        else:
            a = float(self.cubic_a)
            near = ((a + 2) * distance - (a + 3)) * distance * distance + 1
            far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
            weights = torch.where(distance <= 1, near, torch.where(distance < 2, far, torch.zeros_like(distance)))
        inside = (taps >= 0) & (taps < in_len)
        if self.exclude_outside:
            weights = torch.where(inside, weights, torch.zeros_like(weights))
        weights = weights / weights.sum(dim=1, keepdim=True)
        matrix = torch.zeros(coord.shape[0], in_len, dtype=torch.float64, device=x.device)
        matrix.scatter_add_(1, taps.clamp(0, in_len - 1), weights)
        moved = x.movedim(axis, -1)
        return (moved @ matrix.to(x.dtype).T).movedim(-1, axis)


def _constant(name: str, graph: OnnxGraph) -> tuple[bool, Optional[list]]:
    """(known at conversion, value as a list or None when omitted or empty)."""
    if not name:
        return True, None
    try:
        value = torch.as_tensor(get_const_value(name, graph)).reshape(-1).tolist()
    except KeyError:
        return False, None
    return True, value or None


@add_converter("Resize", 11, replace=True)
@add_converter("Resize", 13, replace=True)
@add_converter("Resize", 18)
@add_converter("Resize", 19)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    get = node.attributes.get
    attrs = {
        "mode": get("mode", "nearest"),
        "coordinate_mode": get("coordinate_transformation_mode", "half_pixel"),
        "nearest_mode": get("nearest_mode", "round_prefer_floor"),
        "cubic_a": get("cubic_coeff_a", -0.75),
        "exclude_outside": bool(get("exclude_outside", 0)),
        "extrapolation": get("extrapolation_value", 0.0),
        "policy": get("keep_aspect_ratio_policy", "stretch"),
        "antialias": bool(get("antialias", 0)),
    }
    if attrs["mode"] not in _MODES or attrs["coordinate_mode"] not in _COORDINATE_MODES:
        raise NotImplementedError(f"Resize with mode={attrs['mode']}, {attrs['coordinate_mode']} is not implemented")
    if attrs["nearest_mode"] not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        raise NotImplementedError(f"Resize with nearest_mode={attrs['nearest_mode']} is not implemented")
    if attrs["policy"] not in ("stretch", "not_larger", "not_smaller"):
        raise NotImplementedError(f"Resize with keep_aspect_ratio_policy={attrs['policy']} is not implemented")
    names = list(node.input_values[1:4]) + [""] * (4 - len(node.input_values))
    known = [_constant(name, graph) for name in names]
    static = all(k for k, _ in known)
    roi, scales, sizes = (value for _, value in known)
    module = OnnxResizeExact(attrs, get("axes"), roi, scales, sizes, static)
    inputs = node.input_values[:1] if static else node.input_values
    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(inputs, node.output_values))
