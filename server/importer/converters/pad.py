"""Pad-18+ (the `axes` input, wrap mode, negative pads on any axis), which onnx2torch lacks."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import (
    OnnxMapping,
    OnnxToTorchModule,
    OperationConverterResult,
    get_const_value,
    onnx_mapping_from_node,
)
from torch import nn

from .registry import add_converter


def _source_index(mode: str, size: int, begin: int, end: int, device: torch.device) -> torch.Tensor:
    """Index into an axis of `size` for each position of the axis padded by `begin` and `end` (>= 0)."""
    position = torch.arange(-begin, size + end, device=device)
    if mode == "edge":
        return position.clamp(0, size - 1)
    if mode == "wrap":
        return position.remainder(size)
    period = max(2 * size - 2, 1)  # reflect, without repeating the edge element
    folded = position.remainder(period)
    return torch.where(folded < size, folded, period - folded)


class OnnxPad(nn.Module, OnnxToTorchModule):
    """Pads fixed at conversion, or read from the node's inputs at run time when they are computed."""

    def __init__(
        self, mode: str, pads: Optional[list[int]], axes: Optional[list[int]], value: Optional[float]
    ) -> None:
        super().__init__()
        self.mode, self.pads, self.axes, self.value = mode, pads, axes, value

    def forward(  # pylint: disable=missing-function-docstring
        self,
        input_tensor: torch.Tensor,
        pads: Optional[torch.Tensor] = None,
        constant_value: Optional[torch.Tensor] = None,
        axes: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        rank = input_tensor.dim()
        pad_list = self.pads if self.pads is not None else pads.tolist()
        axis_list = self.axes if self.axes is not None else (list(range(rank)) if axes is None else axes.tolist())
        begins, ends = [0] * rank, [0] * rank
        for i, axis in enumerate(axis_list):
            begins[axis % rank], ends[axis % rank] = pad_list[i], pad_list[i + len(axis_list)]
        if self.mode == "constant":
            value = self.value
            if value is None:
                value = 0.0 if constant_value is None or constant_value.numel() == 0 else constant_value.item()
            torch_pads = [p for axis in reversed(range(rank)) for p in (begins[axis], ends[axis])]
            return F.pad(input_tensor, torch_pads, value=value)
        for axis, (begin, end) in enumerate(zip(begins, ends)):
            size = input_tensor.shape[axis]
            # crop first (negative pads), then pad what is left, as onnxruntime does
            input_tensor = input_tensor.narrow(axis, max(0, -begin), size - max(0, -begin) - max(0, -end))
            if begin > 0 or end > 0:
                size = input_tensor.shape[axis]
                index = _source_index(self.mode, size, max(0, begin), max(0, end), input_tensor.device)
                input_tensor = input_tensor.index_select(axis, index)
        return input_tensor


def _constant(name: str, graph: OnnxGraph) -> Optional[list]:
    """The input's value as a list, [] for an omitted input, None when computed in the graph."""
    if not name:
        return []
    try:
        return torch.as_tensor(get_const_value(name, graph)).reshape(-1).tolist()
    except KeyError:
        return None


@add_converter("Pad", 18)
@add_converter("Pad", 19)
@add_converter("Pad", 21)
@add_converter("Pad", 23)
@add_converter("Pad", 24)
@add_converter("Pad", 25)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    mode = node.attributes.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise NotImplementedError(f"Pad with mode={mode} is not implemented")
    names = list(node.input_values[1:]) + [""] * (4 - len(node.input_values))
    pads, value, axes = (_constant(name, graph) for name in names)
    if pads is None or value is None or axes is None:
        module = OnnxPad(mode, None, None, None)
        return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))
    module = OnnxPad(mode, [int(p) for p in pads], [int(a) for a in axes] or None, value[0] if value else 0.0)
    return OperationConverterResult(
        torch_module=module, onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values)
    )
