"""Two-stream Inception-v3 (Szegedy et al., "Rethinking the Inception architecture", CVPR 2016).

Each stream mirrors torchvision's `inception_v3` layer for layer (bias-free convolutions,
BN with eps 1e-3, factorized 1×7/7×1 and 1×3/3×1 filters, grid reductions in
`mixed_6a` and `mixed_7a`) so its parameter count equals torchvision's: 23,834,568 with
1000 classes and no auxiliary head. Names are the TF-slim ones in lower case
(`conv2d_1a_3x3`, `mixed_5b` … `mixed_7c`). Inputs are 299² by default; the smallest
input that survives the valid-padded stem and reductions is 75².

Two streams (RGB; 2L stacked flow) score the same snippet and their class scores are
averaged (late fusion, Simonyan & Zisserman 2014). The auxiliary classifier on
`mixed_6e` is a training aid: off by default, and when on it only adds a second output
while training.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from .common import ConvBNReLU, LateFusion, scaled


_Scale = Callable[[int], int]  # channel count at full width → at this model's width


def _unit(in_channels: int, out_channels: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0) -> ConvBNReLU:
    return ConvBNReLU(in_channels, out_channels, kernel, stride, padding, eps=1e-3)


class InceptionA(nn.Module):
    """35×35 module: 1×1, 5×5, double 3×3 and pooled 1×1 branches (mixed_5b–5d)."""

    def __init__(self, cin: int, pool_features: int, s: _Scale) -> None:
        super().__init__()
        self.branch1x1 = _unit(cin, s(64), 1)
        self.branch5x5_1 = _unit(cin, s(48), 1)
        self.branch5x5_2 = _unit(s(48), s(64), 5, padding=2)
        self.branch3x3dbl_1 = _unit(cin, s(64), 1)
        self.branch3x3dbl_2 = _unit(s(64), s(96), 3, padding=1)
        self.branch3x3dbl_3 = _unit(s(96), s(96), 3, padding=1)
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.branch_pool = _unit(cin, s(pool_features), 1)
        self.out_channels = s(64) + s(64) + s(96) + s(pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(self.pool(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """35→17 grid reduction (mixed_6a)."""

    def __init__(self, cin: int, s: _Scale) -> None:
        super().__init__()
        self.branch3x3 = _unit(cin, s(384), 3, stride=2)
        self.branch3x3dbl_1 = _unit(cin, s(64), 1)
        self.branch3x3dbl_2 = _unit(s(64), s(96), 3, padding=1)
        self.branch3x3dbl_3 = _unit(s(96), s(96), 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2)
        self.out_channels = s(384) + s(96) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.pool(x),
        ], dim=1)


class InceptionC(nn.Module):
    """17×17 module with 7×7 filters factorized into 1×7 and 7×1 (mixed_6b–6e)."""

    def __init__(self, cin: int, channels_7x7: int, s: _Scale) -> None:
        super().__init__()
        c7 = s(channels_7x7)
        self.branch1x1 = _unit(cin, s(192), 1)
        self.branch7x7_1 = _unit(cin, c7, 1)
        self.branch7x7_2 = _unit(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _unit(c7, s(192), (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _unit(cin, c7, 1)
        self.branch7x7dbl_2 = _unit(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _unit(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _unit(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _unit(c7, s(192), (1, 7), padding=(0, 3))
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.branch_pool = _unit(cin, s(192), 1)
        self.out_channels = 4 * s(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = conv(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(self.pool(x)),
        ], dim=1)


class InceptionD(nn.Module):
    """17→8 grid reduction (mixed_7a)."""

    def __init__(self, cin: int, s: _Scale) -> None:
        super().__init__()
        self.branch3x3_1 = _unit(cin, s(192), 1)
        self.branch3x3_2 = _unit(s(192), s(320), 3, stride=2)
        self.branch7x7x3_1 = _unit(cin, s(192), 1)
        self.branch7x7x3_2 = _unit(s(192), s(192), (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _unit(s(192), s(192), (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _unit(s(192), s(192), 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2)
        self.out_channels = s(320) + s(192) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x)))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(seven),
            self.pool(x),
        ], dim=1)


class InceptionE(nn.Module):
    """8×8 module with expanded 1×3 / 3×1 filter banks (mixed_7b, 7c)."""

    def __init__(self, cin: int, s: _Scale) -> None:
        super().__init__()
        self.branch1x1 = _unit(cin, s(320), 1)
        self.branch3x3_1 = _unit(cin, s(384), 1)
        self.branch3x3_2a = _unit(s(384), s(384), (1, 3), padding=(0, 1))
        self.branch3x3_2b = _unit(s(384), s(384), (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _unit(cin, s(448), 1)
        self.branch3x3dbl_2 = _unit(s(448), s(384), 3, padding=1)
        self.branch3x3dbl_3a = _unit(s(384), s(384), (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _unit(s(384), s(384), (3, 1), padding=(1, 0))
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.branch_pool = _unit(cin, s(192), 1)
        self.out_channels = s(320) + 4 * s(384) + s(192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(three), self.branch3x3_2b(three),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(self.pool(x)),
        ], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17×17 grid (training only)."""

    def __init__(self, cin: int, num_classes: int, s: _Scale) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, 3)
        self.conv0 = _unit(cin, s(128), 1)
        self.conv1 = _unit(s(128), s(768), 5)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(s(768), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(self.conv1(self.conv0(self.pool(x)))).flatten(1))


class InceptionV3(nn.Module):
    """One Inception-v3 stream; `in_channels` is 3 for RGB or 2L for stacked flow."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0, aux_logits: bool = False) -> None:
        super().__init__()
        s = partial(scaled, width=width)
        self.conv2d_1a_3x3 = _unit(in_channels, s(32), 3, stride=2)
        self.conv2d_2a_3x3 = _unit(s(32), s(32), 3)
        self.conv2d_2b_3x3 = _unit(s(32), s(64), 3, padding=1)
        self.maxpool_3a_3x3 = nn.MaxPool2d(3, 2)
        self.conv2d_3b_1x1 = _unit(s(64), s(80), 1)
        self.conv2d_4a_3x3 = _unit(s(80), s(192), 3)
        self.maxpool_5a_3x3 = nn.MaxPool2d(3, 2)
        self.mixed_5b = InceptionA(s(192), 32, s)
        self.mixed_5c = InceptionA(self.mixed_5b.out_channels, 64, s)
        self.mixed_5d = InceptionA(self.mixed_5c.out_channels, 64, s)
        self.mixed_6a = InceptionB(self.mixed_5d.out_channels, s)
        self.mixed_6b = InceptionC(self.mixed_6a.out_channels, 128, s)
        self.mixed_6c = InceptionC(self.mixed_6b.out_channels, 160, s)
        self.mixed_6d = InceptionC(self.mixed_6c.out_channels, 160, s)
        self.mixed_6e = InceptionC(self.mixed_6d.out_channels, 192, s)
        self.aux_logits = InceptionAux(self.mixed_6e.out_channels, num_classes, s) if aux_logits else None
        self.mixed_7a = InceptionD(self.mixed_6e.out_channels, s)
        self.mixed_7b = InceptionE(self.mixed_7a.out_channels, s)
        self.mixed_7c = InceptionE(self.mixed_7b.out_channels, s)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.mixed_7c.out_channels, num_classes)

    _TO_6E = ("conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3", "maxpool_3a_3x3", "conv2d_3b_1x1", "conv2d_4a_3x3",
              "maxpool_5a_3x3", "mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a", "mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        for name in self._TO_6E:
            x = getattr(self, name)(x)
        aux = self.aux_logits(x) if self.aux_logits is not None and self.training else None
        x = self.mixed_7c(self.mixed_7b(self.mixed_7a(x)))
        logits = self.fc(self.avgpool(x).flatten(1))
        return logits if aux is None else (logits, aux)


class TwoStreamInceptionV3(LateFusion):
    """RGB and flow Inception-v3 streams with class scores averaged."""

    def __init__(self, num_classes: int = 101, flow_fields: int = 10, width: float = 1.0, aux_logits: bool = False) -> None:
        super().__init__(InceptionV3(3, num_classes, width, aux_logits), InceptionV3(2 * flow_fields, num_classes, width, aux_logits))

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        a, b = self.rgb(rgb), self.flow(flow)
        if isinstance(a, tuple) and isinstance(b, tuple):
            return self.weights[0] * a[0] + self.weights[1] * b[0], self.weights[0] * a[1] + self.weights[1] * b[1]
        return self.weights[0] * a + self.weights[1] * b
