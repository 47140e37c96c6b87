"""Reduce ops whose axes come as an optional input (ReduceX-18/20, and ReduceSum-13, which onnx2torch breaks
on an empty axes initializer with keepdims=0)."""

from __future__ import annotations

from typing import Callable, Optional

import torch
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

Reduction = Callable[[torch.Tensor, list[int], bool], torch.Tensor]


def _prod(x: torch.Tensor, dims: list[int], keepdim: bool) -> torch.Tensor:
    for dim in sorted(dims, reverse=True):  # from the last axis, so the others keep their index
        x = torch.prod(x, dim, keepdim=keepdim)
    return x


_REDUCTIONS: dict[str, Reduction] = {
    "ReduceMean": lambda x, d, k: torch.mean(x, d, keepdim=k),
    "ReduceMax": lambda x, d, k: torch.amax(x, d, keepdim=k),
    "ReduceMin": lambda x, d, k: torch.amin(x, d, keepdim=k),
    "ReduceSum": lambda x, d, k: torch.sum(x, d, keepdim=k),
    "ReduceProd": _prod,
    "ReduceL1": lambda x, d, k: torch.linalg.vector_norm(x, 1, d, keepdim=k),
    "ReduceL2": lambda x, d, k: torch.linalg.vector_norm(x, 2, d, keepdim=k),
    "ReduceLogSum": lambda x, d, k: torch.log(torch.sum(x, d, keepdim=k)),
    "ReduceLogSumExp": lambda x, d, k: torch.logsumexp(x, d, keepdim=k),
    "ReduceSumSquare": lambda x, d, k: torch.sum(x * x, d, keepdim=k),
}

# With noop_with_empty_axes, onnxruntime still applies the reduction's elementwise part.
_NO_AXES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ReduceL1": torch.abs,
    "ReduceL2": torch.abs,
    "ReduceLogSum": torch.log,
    "ReduceSumSquare": torch.square,
}


class OnnxReduce(nn.Module, OnnxToTorchModule):
    """One reduction over axes fixed at conversion, or read from the `axes` input at run time."""

    def __init__(self, operation_type: str, axes: Optional[list[int]], keepdims: bool, noop_with_empty_axes: bool):
        super().__init__()
        self.operation_type = operation_type
        self.axes = axes
        self.keepdims = keepdims
        self.noop_with_empty_axes = noop_with_empty_axes

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, axes: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        dims = self.axes if self.axes is not None else ([] if axes is None else axes.tolist())
        rank = input_tensor.dim()
        if not dims:
            if self.noop_with_empty_axes:
                elementwise = _NO_AXES.get(self.operation_type)
                return input_tensor if elementwise is None else elementwise(input_tensor)
            dims = list(range(rank))
        if rank == 0:
            return _REDUCTIONS[self.operation_type](input_tensor.reshape(1), [0], False)
        dims = sorted({d % rank for d in dims})
        return _REDUCTIONS[self.operation_type](input_tensor, dims, self.keepdims)


@add_converter("ReduceSum", 13, replace=True)
@add_converter("ReduceMax", 20)
@add_converter("ReduceMin", 20)
def _convert_reduce(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    keepdims = bool(node.attributes.get("keepdims", 1))
    noop = bool(node.attributes.get("noop_with_empty_axes", 0))
    axes_name = node.input_values[1] if len(node.input_values) > 1 else ""
    if axes_name:
        try:
            axes = get_const_value(axes_name, graph)
        except KeyError:  # computed in the graph: read at run time
            module = OnnxReduce(node.operation_type, None, keepdims, noop)
            return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))
        axes = [int(a) for a in torch.as_tensor(axes).reshape(-1).tolist()]
    else:
        axes = []
    return OperationConverterResult(
        torch_module=OnnxReduce(node.operation_type, axes, keepdims, noop),
        onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values),
    )


for _op in _REDUCTIONS:
    if _op != "ReduceSum":  # its last version is 13
        add_converter(_op, 18)(_convert_reduce)
