"""Pieces shared by the zoo's architectures: channel scaling, conv+BN+ReLU units, late fusion.

`width` multiplies every channel count (at least one channel survives), never a kernel,
stride or padding, so a tiny model has the same receptive fields and strides as the
full-size one it stands for.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def scaled(channels: int, width: float) -> int:
    """`channels` × `width`, rounded, at least 1; 0 stays 0 (an absent branch)."""
    return 0 if channels == 0 else max(1, round(channels * width))


class ConvBNReLU(nn.Sequential):
    """Convolution, BatchNorm, ReLU under the names `conv`, `bn`, `relu` (2D or 3D)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        *,
        bias: bool = False,
        eps: float = 1e-5,
        dims: int = 2,
    ) -> None:
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        super().__init__(OrderedDict([
            ("conv", conv(in_channels, out_channels, kernel_size, stride, padding, bias=bias)),
            ("bn", norm(out_channels, eps=eps)),
            ("relu", nn.ReLU()),
        ]))


class LateFusion(nn.Module):
    """Two independent streams whose class scores are averaged (Simonyan & Zisserman 2014).

    TSN (Wang et al. 2016) weights the streams 1 : 1.5 (RGB : flow); the default here is
    the plain mean, pass `weights` to reproduce the weighted variant.
    """

    def __init__(self, rgb: nn.Module, flow: nn.Module, weights: tuple[float, float] = (1.0, 1.0)) -> None:
        super().__init__()
        self.rgb = rgb
        self.flow = flow
        total = weights[0] + weights[1]
        self.weights = (weights[0] / total, weights[1] / total)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.weights[0] * self.rgb(rgb) + self.weights[1] * self.flow(flow)
