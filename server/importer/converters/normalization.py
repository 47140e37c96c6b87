"""GroupNormalization-18 (scale and bias per group) and -21 (per channel), LpNormalization and
MeanVarianceNormalization, which onnx2torch lacks."""

from __future__ import annotations

import torch
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxToTorchModule, OperationConverterResult, onnx_mapping_from_node
from torch import nn

from .registry import add_converter


class OnnxGroupNorm(nn.Module, OnnxToTorchModule):
    """Normalize each group of channels over its channels and every spatial position, then scale and shift."""

    def __init__(self, groups: int, epsilon: float, per_group: bool, stash_float: bool) -> None:
        super().__init__()
        self.groups, self.epsilon, self.per_group, self.stash_float = groups, epsilon, per_group, stash_float

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        n, c = input_tensor.shape[:2]
        x = input_tensor.float() if self.stash_float else input_tensor
        grouped = x.reshape(n, self.groups, -1)
        mean = grouped.mean(dim=-1, keepdim=True)
        var = grouped.var(dim=-1, unbiased=False, keepdim=True)
        normalized = ((grouped - mean) / torch.sqrt(var + self.epsilon)).reshape(input_tensor.shape)
        normalized = normalized.to(input_tensor.dtype)
        if self.per_group:
            scale = scale.repeat_interleave(c // self.groups)
            bias = bias.repeat_interleave(c // self.groups)
        view = [1, c] + [1] * (input_tensor.dim() - 2)
        return normalized * scale.reshape(view) + bias.reshape(view)


def _convert(node: OnnxNode, per_group: bool) -> OperationConverterResult:
    module = OnnxGroupNorm(
        groups=int(node.attributes["num_groups"]),
        epsilon=float(node.attributes.get("epsilon", 1e-5)),
        per_group=per_group,
        stash_float=int(node.attributes.get("stash_type", 1)) == 1,
    )
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


@add_converter("GroupNormalization", 18)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return _convert(node, per_group=True)


@add_converter("GroupNormalization", 21)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    return _convert(node, per_group=False)


class OnnxLpNormalization(nn.Module, OnnxToTorchModule):
    """The input divided by its L1 or L2 norm along one axis (no epsilon: ONNX has none; zero vectors stay 0)."""

    def __init__(self, axis: int, p: int) -> None:
        super().__init__()
        self.axis, self.p = axis, p

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        norm = torch.linalg.vector_norm(input_tensor, ord=self.p, dim=self.axis, keepdim=True)
        return input_tensor / torch.where(norm == 0, torch.ones_like(norm), norm)  # a zero vector stays zero


@add_converter("LpNormalization", 1)
@add_converter("LpNormalization", 22)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    p = int(node.attributes.get("p", 2))
    if p not in (1, 2):
        raise NotImplementedError(f"LpNormalization with p={p} is not implemented")
    module = OnnxLpNormalization(int(node.attributes.get("axis", -1)), p)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class OnnxMeanVarianceNormalization(nn.Module, OnnxToTorchModule):
    """(x - mean) / (std + 1e-9) over `axes`, as ONNX defines it; the variance from centred values, as
    onnxruntime computes it (E[x²] - E[x]², ONNX's own expansion, loses digits over few elements)."""

    def __init__(self, axes: list[int]) -> None:
        super().__init__()
        self.axes = axes

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        mean = input_tensor.mean(dim=self.axes, keepdim=True)
        centred = input_tensor - mean
        variance = (centred * centred).mean(dim=self.axes, keepdim=True)
        return centred / (torch.sqrt(variance) + 1e-9)


@add_converter("MeanVarianceNormalization", 9)
@add_converter("MeanVarianceNormalization", 13)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    module = OnnxMeanVarianceNormalization(list(node.attributes.get("axes", [0, 2, 3])))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))
