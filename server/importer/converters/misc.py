"""Dropout with a seed (inference: the identity and an all-true mask), TopK with ONNX's tie order, CastLike,
Size, Shape with any start and end, GatherElements with negative indices, and the version aliases of ops
whose newer versions only widened their types."""

from __future__ import annotations

from typing import Optional

import torch
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

from .registry import add_converter, converter_for


class OnnxDropoutInference(nn.Module, OnnxToTorchModule):
    """Dropout as an imported (inference) graph runs it: output = input, mask all true.

    A seed only matters in training mode; a model run in training mode (its training_mode
    input true) is refused at run time rather than silently computed without dropout."""

    def __init__(self, with_mask: bool) -> None:
        super().__init__()
        self.with_mask = with_mask

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, ratio: Optional[torch.Tensor] = None,
        training_mode: Optional[torch.Tensor] = None,
    ):
        if training_mode is not None and bool(training_mode) and (ratio is None or float(ratio) > 0):
            raise NotImplementedError("Dropout in training mode is not implemented")
        if not self.with_mask:
            return input_tensor
        return input_tensor, torch.ones_like(input_tensor, dtype=torch.bool)


@add_converter("Dropout", 10, replace=True)
@add_converter("Dropout", 12, replace=True)
@add_converter("Dropout", 13, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    with_mask = len(node.output_values) > 1 and bool(node.output_values[1])
    return OperationConverterResult(torch_module=OnnxDropoutInference(with_mask),
                                    onnx_mapping=onnx_mapping_from_node(node))


class OnnxTopK(nn.Module, OnnxToTorchModule):
    """TopK whose equal values come out lowest index first, as ONNX specifies (torch.topk leaves ties unordered)."""

    def __init__(self, axis: int, largest: bool, k: Optional[int]) -> None:
        super().__init__()
        self.axis, self.largest, self.k = axis, largest, k

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, k: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        count = self.k if self.k is not None else int(k.reshape(-1)[0])
        values, indices = torch.sort(input_tensor, dim=self.axis, descending=self.largest, stable=True)
        return values.narrow(self.axis, 0, count), indices.narrow(self.axis, 0, count)


@add_converter("TopK", 1, replace=True)
@add_converter("TopK", 10, replace=True)
@add_converter("TopK", 11, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    k = node.attributes.get("k")
    module = OnnxTopK(int(node.attributes.get("axis", -1)), bool(node.attributes.get("largest", 1)),
                      int(k) if k is not None else None)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class OnnxCastLike(nn.Module, OnnxToTorchModule):
    """The input in the element type of the second input."""

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        if not target.dtype.is_floating_point and input_tensor.dtype.is_floating_point:
            input_tensor = torch.trunc(input_tensor)  # ONNX casts toward zero, as C does
        return input_tensor.to(target.dtype)


@add_converter("CastLike", 15)
@add_converter("CastLike", 19)
@add_converter("CastLike", 21)
@add_converter("CastLike", 23)
@add_converter("CastLike", 24)
@add_converter("CastLike", 25)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    if node.attributes.get("round_mode", "up") != "up":
        raise NotImplementedError("CastLike with round_mode other than up is not implemented")
    return OperationConverterResult(torch_module=OnnxCastLike(), onnx_mapping=onnx_mapping_from_node(node))


class OnnxSize(nn.Module, OnnxToTorchModule):
    """The number of elements, as an int64 scalar."""

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        return torch.tensor(input_tensor.numel(), dtype=torch.int64, device=input_tensor.device)


@add_converter("Size", 1)
@add_converter("Size", 13)
@add_converter("Size", 19)
@add_converter("Size", 21)
@add_converter("Size", 23)
@add_converter("Size", 24)
@add_converter("Size", 25)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(torch_module=OnnxSize(), onnx_mapping=onnx_mapping_from_node(node))


class OnnxShape(nn.Module, OnnxToTorchModule):
    """The dims from `start` to `end` (clamped, negative from the back) as int64, empty when start >= end."""

    def __init__(self, start: int, end: Optional[int]) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        dims = list(input_tensor.shape)[self.start:self.end]
        return torch.tensor(dims, dtype=torch.int64, device=input_tensor.device)


@add_converter("Shape", 1, replace=True)
@add_converter("Shape", 13, replace=True)
@add_converter("Shape", 15, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    end = node.attributes.get("end")
    module = OnnxShape(int(node.attributes.get("start", 0)), int(end) if end is not None else None)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class OnnxGatherElements(nn.Module, OnnxToTorchModule):
    """torch.gather with ONNX's negative indices counted from the end of the axis."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        indices = indices.long()
        indices = torch.where(indices < 0, indices + input_tensor.shape[self.axis], indices)
        return torch.gather(input_tensor, dim=self.axis, index=indices)


@add_converter("GatherElements", 11, replace=True)
@add_converter("GatherElements", 13, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    module = OnnxGatherElements(int(node.attributes.get("axis", 0)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


# (op, new version, version whose converter it reuses): same attributes, inputs and outputs in onnx.defs;
# the newer version only admits more element types.
WIDENED: list[tuple[str, int, int]] = [
    ("Einsum", 28, 12), ("ReduceLogSum", 28, 18), ("ReduceLogSumExp", 28, 18),
]

for _op, _new, _old in WIDENED:
    add_converter(_op, _new)(converter_for(_op, _old))
