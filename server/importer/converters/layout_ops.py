"""Ops that move elements between axes: DepthToSpace (DCR and CRD), SpaceToDepth, Flatten at any axis,
Reshape with allowzero, and Upsample (Resize's predecessor)."""

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
from .resize import OnnxResizeExact


class OnnxDepthToSpace(nn.Module, OnnxToTorchModule):
    """[N, C·b², H, W] → [N, C, H·b, W·b]; DCR takes the block offsets from the outer channel bits, CRD the inner."""

    def __init__(self, blocksize: int, mode: str) -> None:
        super().__init__()
        self.blocksize, self.mode = blocksize, mode

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        n, c, h, w = input_tensor.shape
        b = self.blocksize
        if self.mode == "DCR":
            x = input_tensor.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        else:
            x = input_tensor.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c // (b * b), h * b, w * b)


class OnnxSpaceToDepth(nn.Module, OnnxToTorchModule):
    """[N, C, H·b, W·b] → [N, C·b², H, W]; block offsets outermost in the channel axis (DCR) or innermost (CRD)."""

    def __init__(self, blocksize: int, mode: str = "DCR") -> None:
        super().__init__()
        self.blocksize, self.mode = blocksize, mode

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        n, c, h, w = input_tensor.shape
        b = self.blocksize
        order = (0, 3, 5, 1, 2, 4) if self.mode == "DCR" else (0, 1, 3, 5, 2, 4)
        x = input_tensor.reshape(n, c, h // b, b, w // b, b).permute(*order)
        return x.reshape(n, c * b * b, h // b, w // b)


@add_converter("DepthToSpace", 1)
@add_converter("DepthToSpace", 11, replace=True)
@add_converter("DepthToSpace", 13, replace=True)
@add_converter("DepthToSpace", 28)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    mode = node.attributes.get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise NotImplementedError(f"DepthToSpace with mode={mode} is not implemented")
    module = OnnxDepthToSpace(int(node.attributes["blocksize"]), mode)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


@add_converter("SpaceToDepth", 1)
@add_converter("SpaceToDepth", 13)
@add_converter("SpaceToDepth", 28)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    mode = node.attributes.get("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise NotImplementedError(f"SpaceToDepth with mode={mode} is not implemented")
    module = OnnxSpaceToDepth(int(node.attributes["blocksize"]), mode)
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class OnnxFlatten(nn.Module, OnnxToTorchModule):
    """To 2D at `axis`: axis 0 (or -rank) gives [1, everything]."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        axis = self.axis % input_tensor.dim() if self.axis < 0 else self.axis
        outer = math.prod(input_tensor.shape[:axis])
        return input_tensor.reshape(outer, -1) if input_tensor.numel() else input_tensor.reshape(
            outer, math.prod(input_tensor.shape[axis:]))


@add_converter("Flatten", 1)
@add_converter("Flatten", 9, replace=True)
@add_converter("Flatten", 11, replace=True)
@add_converter("Flatten", 13, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    module = OnnxFlatten(int(node.attributes.get("axis", 1)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


class OnnxReshape(nn.Module, OnnxToTorchModule):
    """Reshape to a shape tensor: 0 copies the input's dim unless allowzero, -1 is inferred."""

    def __init__(self, allowzero: bool) -> None:
        super().__init__()
        self.allowzero = allowzero

    def forward(  # pylint: disable=missing-function-docstring
        self, input_tensor: torch.Tensor, shape: torch.Tensor
    ) -> torch.Tensor:
        target = [int(d) for d in shape.tolist()]
        if not self.allowzero:
            target = [input_tensor.shape[i] if d == 0 else d for i, d in enumerate(target)]
        return torch.reshape(input_tensor, target)


@add_converter("Reshape", 14, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    del graph
    module = OnnxReshape(bool(node.attributes.get("allowzero", 0)))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def _scales(node: OnnxNode, graph: OnnxGraph) -> Optional[list[float]]:
    if "scales" in node.attributes:
        return [float(s) for s in node.attributes["scales"]]
    try:
        return torch.as_tensor(get_const_value(node.input_values[1], graph)).reshape(-1).tolist()
    except KeyError:
        return None


@add_converter("Upsample", 7)
@add_converter("Upsample", 9)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    """Upsample is Resize with asymmetric coordinates and floor rounding for nearest (as onnxruntime runs it)."""
    mode = node.attributes.get("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise NotImplementedError(f"Upsample with mode={mode} is not implemented")
    scales = _scales(node, graph)
    attrs = {"mode": mode, "coordinate_mode": "asymmetric", "nearest_mode": "floor", "cubic_a": -0.75,
             "exclude_outside": False, "extrapolation": 0.0, "policy": "stretch", "antialias": False}
    if scales is None:
        module = OnnxResizeExact(attrs, None, None, None, None, static=False)
        names = [node.input_values[0], "", node.input_values[1]]
        return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(names, node.output_values))
    module = OnnxResizeExact(attrs, None, None, scales, None, static=True)
    return OperationConverterResult(torch_module=module,
                                    onnx_mapping=OnnxMapping(node.input_values[:1], node.output_values))
