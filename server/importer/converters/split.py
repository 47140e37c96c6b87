"""Split-18: the `num_outputs` attribute (uneven last chunk) or a split-sizes input, which onnx2torch lacks."""

from __future__ import annotations

import math
from typing import Optional

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


class OnnxSplit18(nn.Module, OnnxToTorchModule):
    """Sizes fixed at conversion, read from the `split` input, or `num_outputs` chunks of ceil(n / num_outputs)."""

    def __init__(self, axis: int, num_outputs: int, sizes: Optional[list[int]]) -> None:
        super().__init__()
        self.axis, self.num_outputs, self.sizes = axis, num_outputs, sizes

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, split: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, ...]:
        sizes = self.sizes if self.sizes is not None else (None if split is None else split.tolist())
        if sizes is None:
            length = input_tensor.shape[self.axis]
            chunk = math.ceil(length / self.num_outputs)
            sizes = [chunk] * (self.num_outputs - 1) + [length - chunk * (self.num_outputs - 1)]
            if sizes[-1] <= 0:
                raise ValueError(f"Split: an axis of {length} does not make {self.num_outputs} chunks of {chunk}")
        return torch.split(input_tensor, sizes, dim=self.axis)


@add_converter("Split", 18)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    axis = node.attributes.get("axis", 0)
    num_outputs = node.attributes.get("num_outputs", len(node.output_values))
    split_name = node.input_values[1] if len(node.input_values) > 1 else ""
    if not split_name:
        module = OnnxSplit18(axis, num_outputs, None)
    else:
        try:
            sizes = torch.as_tensor(get_const_value(split_name, graph)).reshape(-1).tolist()
        except KeyError:  # computed in the graph: read at run time
            return OperationConverterResult(
                torch_module=OnnxSplit18(axis, num_outputs, None), onnx_mapping=onnx_mapping_from_node(node)
            )
        module = OnnxSplit18(axis, num_outputs, [int(s) for s in sizes])
    return OperationConverterResult(
        torch_module=module, onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values)
    )
