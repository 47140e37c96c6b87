"""Conv with SAME auto_pad, and ConvTranspose with auto_pad, output_shape, asymmetric pads and output_padding.

onnx2torch refuses SAME padding (tf2onnx writes it) and ConvTranspose pads that are not
symmetric. SAME pads depend on the input size, so they are computed per call; a
ConvTranspose is computed unpadded and then cropped (or zero-extended) to ONNX's window.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from onnx2torch.onnx_graph import OnnxGraph
from onnx2torch.onnx_node import OnnxNode
from onnx2torch.utils.common import OnnxMapping, OnnxToTorchModule, OperationConverterResult
from torch import nn

from .registry import add_converter, converter_for

_ONNX2TORCH_CONV = converter_for("Conv", 11)
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _torch_pads(begins: list[int], ends: list[int]) -> list[int]:
    """ONNX [b1, b2, e1, e2] order to F.pad's last-axis-first [b2, e2, b1, e1]."""
    return [p for pair in zip(reversed(begins), reversed(ends)) for p in pair]


def _split(total: int, auto_pad: str) -> tuple[int, int]:
    """(begin, end) of a SAME pad: the odd element at the end for SAME_UPPER, at the start for SAME_LOWER."""
    small, large = total // 2, total - total // 2
    return (small, large) if auto_pad == "SAME_UPPER" else (large, small)  # output_shape alone: as SAME_LOWER


class OnnxConvSame(nn.Module, OnnxToTorchModule):
    """A Conv padded so that output = ceil(input / stride), the pads computed from each input's size."""

    def __init__(self, conv: nn.Module, auto_pad: str) -> None:
        super().__init__()
        self.conv, self.auto_pad = conv, auto_pad

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        begins, ends = [], []
        for n, k, s, d in zip(input_tensor.shape[2:], self.conv.kernel_size, self.conv.stride, self.conv.dilation):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            begin, end = _split(total, self.auto_pad)
            begins.append(begin)
            ends.append(end)
        pads = _torch_pads(begins, ends)
        return self.conv(F.pad(input_tensor, pads) if any(pads) else input_tensor)


def _weights(node: OnnxNode, graph: OnnxGraph) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    weights = graph.initializers[node.input_values[1]].to_torch()
    bias_name = node.input_values[2] if len(node.input_values) > 2 else ""
    bias = graph.initializers[bias_name].to_torch() if bias_name else None
    return weights, bias


@add_converter("Conv", 1, replace=True)
@add_converter("Conv", 11, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    auto_pad = node.attributes.get("auto_pad", "NOTSET")
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return _ONNX2TORCH_CONV(node, graph)
    weights, bias = _weights(node, graph)
    rank = weights.dim() - 2
    if rank not in _CONV:
        raise NotImplementedError(f"Conv with {rank} spatial axes is not implemented")
    groups = int(node.attributes.get("group", 1))
    conv = _CONV[rank](
        in_channels=weights.shape[1] * groups, out_channels=weights.shape[0],
        kernel_size=tuple(node.attributes.get("kernel_shape", weights.shape[2:])),
        stride=tuple(node.attributes.get("strides", [1] * rank)),
        dilation=tuple(node.attributes.get("dilations", [1] * rank)),
        groups=groups, bias=bias is not None,
    )
    with torch.no_grad():
        conv.weight.data = weights
        if bias is not None:
            conv.bias.data = bias
    return OperationConverterResult(torch_module=OnnxConvSame(conv, auto_pad),
                                    onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values))


class OnnxConvTranspose(nn.Module, OnnxToTorchModule):
    """ConvTranspose unpadded, then cut to ONNX's output window: pads (explicit or from auto_pad/output_shape)
    crop, output_padding and a larger output_shape extend with positions that only the bias reaches."""

    def __init__(  # pylint: disable=too-many-arguments
        self, conv: nn.Module, bias: Optional[torch.Tensor], pads: list[int], output_padding: list[int],
        output_shape: Optional[list[int]], auto_pad: str,
    ) -> None:
        super().__init__()
        self.conv = conv
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None
        self.pads, self.output_padding, self.output_shape, self.auto_pad = pads, output_padding, output_shape, auto_pad

    def window(self, sizes: list[int]) -> tuple[list[int], list[int]]:
        """Per spatial axis: how much to cut from the start and from the end of the unpadded output
        (negative: zeros to add)."""
        rank = len(sizes)
        begins, ends = [], []
        for i, (n, k, s, d) in enumerate(zip(sizes, self.conv.kernel_size, self.conv.stride, self.conv.dilation)):
            full = (n - 1) * s + (k - 1) * d + 1 + self.output_padding[i]
            if self.output_shape is not None or self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                out = self.output_shape[i] if self.output_shape is not None else n * s
                total = full - out  # an output larger than the full one gets its zeros at the end, as in onnxruntime
                begin, end = _split(total, self.auto_pad) if total >= 0 else (0, total)
            elif self.auto_pad == "VALID":
                begin, end = 0, 0
            else:
                begin, end = self.pads[i], self.pads[i + rank]
            begins.append(begin)
            ends.append(end - self.output_padding[i])
        return begins, ends

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:  # pylint: disable=missing-function-docstring
        result = self.conv(input_tensor)
        begins, ends = self.window(list(input_tensor.shape[2:]))
        cuts = _torch_pads(begins, ends)
        if any(cuts):
            result = F.pad(result, [-c for c in cuts])
        if self.bias is not None:
            result = result + self.bias.reshape(1, -1, *[1] * (result.dim() - 2))
        return result


@add_converter("ConvTranspose", 1, replace=True)
@add_converter("ConvTranspose", 11, replace=True)
def _(node: OnnxNode, graph: OnnxGraph) -> OperationConverterResult:
    weights, bias = _weights(node, graph)
    rank = weights.dim() - 2
    if rank not in _CONV_TRANSPOSE:
        raise NotImplementedError(f"ConvTranspose with {rank} spatial axes is not implemented")
    attrs = node.attributes
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        raise NotImplementedError(f"ConvTranspose with auto_pad={auto_pad} is not implemented")
    groups = int(attrs.get("group", 1))
    conv = _CONV_TRANSPOSE[rank](
        in_channels=weights.shape[0], out_channels=weights.shape[1] * groups,
        kernel_size=tuple(attrs.get("kernel_shape", weights.shape[2:])),
        stride=tuple(attrs.get("strides", [1] * rank)), dilation=tuple(attrs.get("dilations", [1] * rank)),
        groups=groups, bias=False,
    )
    with torch.no_grad():
        conv.weight.data = weights
    output_shape = attrs.get("output_shape")
    module = OnnxConvTranspose(
        conv, bias, pads=list(attrs.get("pads", [0] * 2 * rank)),
        output_padding=list(attrs.get("output_padding", [0] * rank)),
        output_shape=list(output_shape)[-rank:] if output_shape else None, auto_pad=auto_pad,
    )
    return OperationConverterResult(torch_module=module,
                                    onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values))
