"""R(2+1)D-18 (Tran et al., "A closer look at spatiotemporal convolutions for action recognition", CVPR 2018).

Every 3×3×3 convolution of a 3D ResNet-18 is factorized into a 1×3×3 spatial convolution
into M_i channels, BN, ReLU, then a 3×1×1 temporal one, with
M_i = ⌊t·d²·N_{i−1}·N_i / (d²·N_{i−1} + t·N_i)⌋ (t = 3, d = 3) chosen so the pair has
about the parameters of the 3D filter it replaces (paper, Sect. 3.5). The stem factorizes
the 3×7×7 conv1 through 45 channels, as in the authors' release.

By default M_i is computed once per residual unit from the unit's input and output
widths and used for both of its convolutions, as torchvision's `r2plus1d_18` does; the
count then equals torchvision's exactly, 31,505,325 with 400 classes. With
`per_conv_midplanes=True` each convolution takes M_i from its own N_{i−1}, N_i, the
formula read literally (33,370,839 parameters; the two differ only in the first unit of
res3–res5). Layer names follow the paper's Table 1 as residual units: `conv1`,
`res2a` … `res5b`, `pool5`, `fc`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .common import scaled

_STAGES = [(2, 64, 1), (3, 128, 2), (4, 256, 2), (5, 512, 2)]  # stage, channels, stride


def midplanes(n_in: int, n_out: int, t: int = 3, d: int = 3) -> int:
    """M_i: channels between the spatial and temporal convolutions of a (2+1)D block."""
    return (t * d * d * n_in * n_out) // (d * d * n_in + t * n_out)


class Conv2Plus1D(nn.Sequential):
    """1×3×3 spatial conv → BN → ReLU → 3×1×1 temporal conv; the stride is split the same way."""

    def __init__(self, n_in: int, n_out: int, mid: int, stride: int = 1) -> None:
        super().__init__(OrderedDict([
            ("spatial", nn.Conv3d(n_in, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)),
            ("bn_spatial", nn.BatchNorm3d(mid)),
            ("relu_spatial", nn.ReLU()),
            ("temporal", nn.Conv3d(mid, n_out, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False)),
        ]))


class BasicBlock2Plus1D(nn.Module):
    """ResNet-18 basic unit with both convolutions factorized."""

    def __init__(self, n_in: int, n_out: int, stride: int, per_conv_midplanes: bool) -> None:
        super().__init__()
        mid1 = midplanes(n_in, n_out)
        mid2 = midplanes(n_out, n_out) if per_conv_midplanes else mid1
        self.conv1 = Conv2Plus1D(n_in, n_out, mid1, stride)
        self.bn1 = nn.BatchNorm3d(n_out)
        self.relu1 = nn.ReLU()
        self.conv2 = Conv2Plus1D(n_out, n_out, mid2)
        self.bn2 = nn.BatchNorm3d(n_out)
        self.projection = stride != 1 or n_in != n_out
        if self.projection:
            self.shortcut = nn.Sequential(OrderedDict([
                ("conv", nn.Conv3d(n_in, n_out, 1, stride, bias=False)),
                ("bn", nn.BatchNorm3d(n_out)),
            ]))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.shortcut(x) if self.projection else x))


class R2Plus1D18(nn.Module):
    """R(2+1)D-18 on a (3, frames, size, size) clip; global pooling makes it size-agnostic."""

    def __init__(self, num_classes: int = 400, width: float = 1.0, per_conv_midplanes: bool = False) -> None:
        super().__init__()
        c45, c64 = scaled(45, width), scaled(64, width)
        self.conv1 = nn.Sequential(OrderedDict([
            ("spatial", nn.Conv3d(3, c45, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)),
            ("bn_spatial", nn.BatchNorm3d(c45)),
            ("relu_spatial", nn.ReLU()),
            ("temporal", nn.Conv3d(c45, c64, (3, 1, 1), 1, (1, 0, 0), bias=False)),
            ("bn", nn.BatchNorm3d(c64)),
            ("relu", nn.ReLU()),
        ]))
        self.unit_names: list[str] = []
        channels = c64
        for stage, out, stride in _STAGES:
            out = scaled(out, width)
            for index, letter in enumerate("ab"):
                name = f"res{stage}{letter}"
                self.add_module(name, BasicBlock2Plus1D(channels, out, stride if index == 0 else 1, per_conv_midplanes))
                self.unit_names.append(name)
                channels = out
        self.pool5 = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.conv1(video)
        for name in self.unit_names:
            x = getattr(self, name)(x)
        return self.fc(self.pool5(x).flatten(1))
