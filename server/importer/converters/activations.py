"""Activations onnx2torch lacks or narrows: Gelu-20, Mish, Swish, ThresholdedRelu, Selu and Celu with any
constants, and Clip with omitted or computed bounds."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

from .registry import add_converter


class OnnxElementwise(nn.Module, OnnxToTorchModule):
    """One element-wise function of the input, its constants fixed at conversion."""

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor], label: str) -> None:
        super().__init__()
        self.function, self.label = function, label

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        return self.function(input_tensor)

    def extra_repr(self) -> str:
        return self.label


def _result(node: OnnxNode, function: Callable[[torch.Tensor], torch.Tensor], label: str) -> OperationConverterResult:
    return OperationConverterResult(torch_module=OnnxElementwise(function, label),
                                    onnx_mapping=onnx_mapping_from_node(node))


@add_converter("Gelu", 20)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    approximate = node.attributes.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise NotImplementedError(f"Gelu with approximate={approximate} is not implemented")
    return _result(node, lambda x: F.gelu(x, approximate=approximate), f"gelu {approximate}")


@add_converter("Mish", 18)
@add_converter("Mish", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return _result(node, F.mish, "mish")


@add_converter("Swish", 24)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    alpha = float(node.attributes.get("alpha", 1.0))
    return _result(node, lambda x: x * torch.sigmoid(alpha * x), f"swish alpha={alpha}")


@add_converter("ThresholdedRelu", 10)
@add_converter("ThresholdedRelu", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    alpha = float(node.attributes.get("alpha", 1.0))
    return _result(node, lambda x: torch.where(x > alpha, x, torch.zeros_like(x)), f"thresholded relu alpha={alpha}")


@add_converter("Selu", 6, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    """torch's selu fixes alpha and gamma; ONNX lets a model choose both."""
    del graph
    alpha = float(node.attributes.get("alpha", 1.67326319217681884765625))
    gamma = float(node.attributes.get("gamma", 1.05070102214813232421875))
    return _result(node, lambda x: gamma * torch.where(x > 0, x, alpha * torch.expm1(x)),
                   f"selu alpha={alpha} gamma={gamma}")


@add_converter("Celu", 12, replace=True)
@add_converter("Celu", 28)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    alpha = float(node.attributes.get("alpha", 1.0))
    return _result(node, lambda x: F.celu(x, alpha=alpha), f"celu alpha={alpha}")


class OnnxClip(nn.Module, OnnxToTorchModule):
    """Clip whose bounds are tensors (fixed or computed) or omitted, meaning no limit on that side."""

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, low: Optional[torch.Tensor] = None, high: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if low is not None:
            input_tensor = torch.maximum(input_tensor, low.to(input_tensor.dtype))
        if high is not None:  # after the lower bound: ONNX gives max where min > max
            input_tensor = torch.minimum(input_tensor, high.to(input_tensor.dtype))
        return input_tensor


@add_converter("Clip", 11, replace=True)
@add_converter("Clip", 12, replace=True)
@add_converter("Clip", 13, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return OperationConverterResult(torch_module=OnnxClip(), onnx_mapping=onnx_mapping_from_node(node))
