"""MaxPool (with its Indices output), AveragePool and LpPool with asymmetric and auto pads, ceil_mode and
dilations as onnxruntime computes them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

from .registry import add_converter

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _torch_pads(begins: list[int], ends: list[int]) -> list[int]:
    """ONNX [b1, b2, e1, e2] order to F.pad's last-axis-first [b2, e2, b1, e1]."""
    return [p for pair in zip(reversed(begins), reversed(ends)) for p in pair]


def _pad(tensor: torch.Tensor, pads: list[int], value: float = 0.0) -> torch.Tensor:
    return F.pad(tensor, pads, value=value) if any(pads) else tensor


class OnnxPool(nn.Module, OnnxToTorchModule):
    """Explicit padding, then an unpadded torch pool; pads and output sizes follow onnxruntime."""

    def __init__(  # pylint: disable=too-many-arguments
        self,
        mode: str,
        kernel: list[int],
        strides: list[int],
        dilations: list[int],
        pads: list[int],
        auto_pad: str,
        ceil_mode: bool,
        count_include_pad: bool,
        p: float = 2.0,
        indices: str = "",
    ) -> None:
        """mode: max, average or lp (whose norm is `p`); indices: "" (none), "row" or "column" (storage_order)."""
        super().__init__()
        self.p, self.indices = p, indices
        self.mode, self.kernel, self.strides, self.dilations = mode, kernel, strides, dilations
        self.pads, self.auto_pad, self.ceil_mode, self.count_include_pad = pads, auto_pad, ceil_mode, count_include_pad
        self._plans: dict[tuple[int, ...], tuple] = {}
        """Per input size: the geometry, and the padding when one torch pool call computes the same."""

    def _plan(self, sizes: list[int]) -> tuple:
        key = tuple(sizes)
        plan = self._plans.get(key)
        if plan is None:
            geometry = self._geometry(sizes)
            plan = self._plans[key] = (geometry, self._direct_padding(sizes, *geometry))
        return plan

    def _direct_padding(self, sizes, begins, ends, extras, outs) -> list[int] | None:
        """The padding with which torch's own pool gives onnxruntime's result, or None.

        That is so when the pads are symmetric and at most half a kernel (what torch
        pads implicitly: -inf for max, uncounted or counted zeros for average, as
        count_include_pad says), no ceil_mode window needs room past them, and torch's
        floor rule gives the same output size. The general path pads a copy of the
        input and, for average, pools a mask as well: on BN-Inception that made the
        imported graph slower than the model it came from."""
        if self.mode == "lp" or self.indices:
            return None
        if begins != ends or any(extras) or (self.mode != "max" and any(d != 1 for d in self.dilations)):
            return None
        for n, k, s, d, pad, out in zip(sizes, self.kernel, self.strides, self.dilations, begins, outs):
            if out <= 0 or not 0 <= pad <= k // 2 or (n + 2 * pad - d * (k - 1) - 1) // s + 1 != out:
                return None
        return begins

    def _geometry(self, sizes: list[int]) -> tuple[list[int], list[int], list[int], list[int]]:
        """Per spatial axis: pad before, pad after, extra zeros after (for ceil_mode), output size."""
        begins, ends, extras, outs = [], [], [], []
        for i, (n, k, s, d) in enumerate(zip(sizes, self.kernel, self.strides, self.dilations)):
            eff = d * (k - 1) + 1
            if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                total = (-(-n // s) - 1) * s + k - n  # onnxruntime sizes SAME pads by the undilated kernel
                begin = int(total / 2) if self.auto_pad == "SAME_UPPER" else int((total + 1) / 2)
                end = total - begin
            else:
                begin, end = (0, 0) if self.auto_pad == "VALID" else (self.pads[i], self.pads[i + len(sizes)])
            span = n + begin + end - eff
            if self.ceil_mode:
                out = math.ceil(span / s) + 1
                if (out - 1) * s >= n + begin:  # onnxruntime drops a window that starts in the end padding
                    out -= 1
            else:
                out = math.trunc(span / s) + 1  # truncation, as onnxruntime rounds toward zero
            begins.append(begin)
            ends.append(end)
            extras.append(max(0, (out - 1) * s + eff - (n + begin + end)))
            outs.append(out)
        return begins, ends, extras, outs

    def forward(self, input_tensor: torch.Tensor):  # pylint: disable=missing-function-docstring
        rank = len(self.kernel)
        batch, channels, *sizes = input_tensor.shape
        (begins, ends, extras, outs), direct = self._plan(sizes)
        if direct is not None:
            if self.mode == "max":
                return _MAX_POOL[rank](input_tensor, self.kernel, self.strides, direct, self.dilations)
            return _AVG_POOL[rank](input_tensor, self.kernel, self.strides, direct,
                                   count_include_pad=self.count_include_pad)
        if min(outs) <= 0:
            return input_tensor.new_zeros((batch, channels, *(max(o, 0) for o in outs)))
        crop = (Ellipsis, *(slice(0, o) for o in outs))
        # Pads first (negative ones crop, as in onnxruntime), then the room ceil_mode windows need.
        pads, tail = _torch_pads(begins, ends), _torch_pads([0] * rank, extras)
        if self.mode == "max":
            dtype = input_tensor.dtype
            lowest = torch.finfo(dtype).min if dtype.is_floating_point else torch.iinfo(dtype).min
            pads = _torch_pads(begins, [max(e, 0) for e in ends])  # onnxruntime's MaxPool does not crop
            padded = _pad(_pad(input_tensor, pads, lowest), tail, lowest)
            if not self.indices:
                return _MAX_POOL[rank](padded, self.kernel, self.strides, 0, self.dilations)[crop]
            pooled, where = _MAX_POOL[rank](padded, self.kernel, self.strides, 0, self.dilations, return_indices=True)
            return pooled[crop], self._input_indices(where[crop], padded.shape[2:], begins, input_tensor.shape)
        if self.mode == "lp":
            powered = _pad(_pad(input_tensor.abs().pow(self.p), pads), tail)
            flat = powered.reshape(batch * channels, 1, *powered.shape[2:])
            pooled = self._window_sum(flat)[crop].pow(1.0 / self.p)
            return pooled.reshape(batch, channels, *pooled.shape[2:])

        flat = input_tensor.reshape(batch * channels, 1, *sizes)
        ones = input_tensor.new_ones((1, 1, *sizes))
        mask = _pad(_pad(ones, pads, float(self.count_include_pad)), tail)
        sums = self._window_sum(_pad(_pad(flat, pads), tail))
        counts = self._window_sum(mask).clamp(min=1.0)  # windows wholly in padding average to 0
        pooled = (sums / counts)[crop]
        return pooled.reshape(batch, channels, *pooled.shape[2:])

    def _input_indices(self, where: torch.Tensor, padded: torch.Size, begins: list[int], shape: torch.Size):
        """torch's index into each padded plane → ONNX's index into the whole input (N, C, then the spatial
        axes row-major, or column-major for storage_order 1)."""
        coords, rest = [], where
        for size in reversed(padded):
            coords.append(rest % size)
            rest = torch.div(rest, size, rounding_mode="floor")
        coords = [c - b for c, b in zip(reversed(coords), begins)]
        sizes = list(shape[2:])
        order = range(len(sizes)) if self.indices == "row" else reversed(range(len(sizes)))
        flat = torch.zeros_like(where)
        for axis in order:
            flat = flat * sizes[axis] + coords[axis]
        planes = torch.arange(shape[0] * shape[1], device=where.device).reshape(shape[0], shape[1],
                                                                            *[1] * len(sizes))
        return flat + planes * math.prod(sizes)

    def _window_sum(self, padded: torch.Tensor) -> torch.Tensor:
        rank = len(self.kernel)
        if all(d == 1 for d in self.dilations):
            return _AVG_POOL[rank](padded, self.kernel, self.strides) * math.prod(self.kernel)
        weight = padded.new_ones((1, 1, *self.kernel))
        return _CONV[rank](padded, weight, stride=self.strides, dilation=self.dilations)


def _convert_pool(node: OnnxNode, mode: str) -> OperationConverterResult:
    attrs = node.attributes
    kernel = list(attrs["kernel_shape"])
    rank = len(kernel)
    if rank not in _MAX_POOL:
        raise NotImplementedError(f"{node.operation_type} with {rank} spatial axes is not implemented")
    indices = ""
    if len(node.output_values) > 1 and node.output_values[1]:
        indices = "column" if int(attrs.get("storage_order", 0)) == 1 else "row"
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise NotImplementedError(f"{node.operation_type} with auto_pad={auto_pad} is not implemented")
    module = OnnxPool(
        mode=mode,
        kernel=kernel,
        strides=list(attrs.get("strides", [1] * rank)),
        dilations=list(attrs.get("dilations", [1] * rank)),
        pads=list(attrs.get("pads", [0] * 2 * rank)),
        auto_pad=auto_pad,
        ceil_mode=bool(attrs.get("ceil_mode", 0)),
        count_include_pad=bool(attrs.get("count_include_pad", 0)),
        p=float(attrs.get("p", 2.0)),
        indices=indices,
    )
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


@add_converter("MaxPool", 1)
@add_converter("MaxPool", 8, replace=True)
@add_converter("MaxPool", 10, replace=True)
@add_converter("MaxPool", 11, replace=True)
@add_converter("MaxPool", 12, replace=True)
@add_converter("MaxPool", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return _convert_pool(node, "max")


@add_converter("AveragePool", 1)
@add_converter("AveragePool", 7, replace=True)
@add_converter("AveragePool", 10, replace=True)
@add_converter("AveragePool", 11, replace=True)
@add_converter("AveragePool", 19)
@add_converter("AveragePool", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return _convert_pool(node, "average")


@add_converter("LpPool", 1)
@add_converter("LpPool", 2)
@add_converter("LpPool", 11)
@add_converter("LpPool", 18)
@add_converter("LpPool", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    """(LpPool-1's auto_pad, and its p as a float, read the same way.)"""
    del graph
    return _convert_pool(node, "lp")


class OnnxGlobalMaxPool(nn.Module, OnnxToTorchModule):
    """Max over every spatial axis, keeping them as size 1."""

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        return torch.amax(input_tensor, dim=tuple(range(2, input_tensor.dim())), keepdim=True)


@add_converter("GlobalMaxPool", 1)
@add_converter("GlobalMaxPool", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(torch_module=OnnxGlobalMaxPool(), onnx_mapping=onnx_mapping_from_node(node))
