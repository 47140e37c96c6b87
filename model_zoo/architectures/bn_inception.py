"""Two-stream BN-Inception as used by Temporal Segment Networks (Wang et al., ECCV 2016).

BN-Inception is Inception with batch normalization (Ioffe & Szegedy 2015, Fig. 5): the
5×5 convolutions of GoogLeNet become two stacked 3×3s, inception 3c and 4e reduce the
grid with stride-2 branches and a max-pooling pass-through. The layout follows the
Caffe model TSN trained (`conv1/7x7_s2`, `inception_3a/1x1`, …): every convolution
keeps a bias and is followed by BN, pooling rounds up (Caffe's ceil mode), 5b pools
with max instead of average. With 1000 classes one stream has 11,295,240 parameters,
the figure published for this model by imgclsmob/pytorchcv's BN-Inception.

Caffe's unpadded ceil-mode pool in 3c and 4e matches the stride-2 convolutions'
⌈n/2⌉ only on even grids (28 and 14 at 224²); on an odd grid (7 at 112²) it yields one
row fewer and the branches could not be concatenated. The model is therefore built for
an input size: where Caffe's pool does not fit, the pass-through takes the convolutions'
padding of 1, so its windows are centred where theirs are. At 224² nothing changes.

Two streams (RGB; 2L stacked flow, TSN's L = 5) score one snippet each; their class
scores are averaged (late fusion). TSN's segmental consensus averages such snippet
scores over segments, outside a single forward.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvBNReLU, LateFusion, scaled
from .limits import ceil_pooled

# name: (1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool proj, pool, stride)
_MODULES = [
    ("inception_3a", 64, 64, 64, 64, 96, 32, "avg", 1),
    ("inception_3b", 64, 64, 96, 64, 96, 64, "avg", 1),
    ("inception_3c", 0, 128, 160, 64, 96, 0, "max", 2),
    ("inception_4a", 224, 64, 96, 96, 128, 128, "avg", 1),
    ("inception_4b", 192, 96, 128, 96, 128, 128, "avg", 1),
    ("inception_4c", 160, 128, 160, 128, 160, 128, "avg", 1),
    ("inception_4d", 96, 128, 192, 160, 192, 128, "avg", 1),
    ("inception_4e", 0, 128, 192, 192, 256, 0, "max", 2),
    ("inception_5a", 352, 192, 320, 160, 224, 128, "avg", 1),
    ("inception_5b", 352, 192, 320, 192, 224, 128, "max", 1),
]


def _unit(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> ConvBNReLU:
    return ConvBNReLU(in_channels, out_channels, kernel, stride, kernel // 2, bias=True)


def reduction_pool(extent: int) -> nn.MaxPool2d:
    """The pass-through of a stride-2 module on an `extent`-wide grid, yielding the convolutions' ⌈extent/2⌉.

    Caffe's unpadded ceil-mode pool where it does so from whole windows (an even grid of
    at least 4); otherwise padding 1, as the 3×3 stride-2 convolutions beside it have.
    """
    if extent % 2 == 0 and extent >= 4:
        return nn.MaxPool2d(3, 2, ceil_mode=True)
    return nn.MaxPool2d(3, 2, padding=1)


class InceptionBN(nn.Module):
    """One inception module; stride 2 drops the 1×1 branch and passes the input through max pooling.

    `extent` is the input grid's side, which only a stride-2 module's pooling depends on.
    """

    def __init__(
        self, in_channels: int, c1: int, c3r: int, c3: int, d3r: int, d3: int, proj: int, pool: str, stride: int,
        extent: int = 28,
    ) -> None:
        super().__init__()
        self.has_1x1 = c1 > 0
        if self.has_1x1:
            self.conv_1x1 = _unit(in_channels, c1, 1)
        self.conv_3x3_reduce = _unit(in_channels, c3r, 1)
        self.conv_3x3 = _unit(c3r, c3, 3, stride)
        self.double_3x3_reduce = _unit(in_channels, d3r, 1)
        self.double_3x3_1 = _unit(d3r, d3, 3)
        self.double_3x3_2 = _unit(d3, d3, 3, stride)
        if stride == 2:
            self.pool = reduction_pool(extent)
        elif pool == "max":
            self.pool = nn.MaxPool2d(3, 1, 1, ceil_mode=True)
        else:
            self.pool = nn.AvgPool2d(3, 1, 1, ceil_mode=True)
        self.has_proj = proj > 0
        if self.has_proj:
            self.pool_proj = _unit(in_channels, proj, 1)
        self.out_channels = c1 + c3 + d3 + (proj if proj else in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.conv_1x1(x)] if self.has_1x1 else []
        branches.append(self.conv_3x3(self.conv_3x3_reduce(x)))
        branches.append(self.double_3x3_2(self.double_3x3_1(self.double_3x3_reduce(x))))
        pooled = self.pool(x)
        branches.append(self.pool_proj(pooled) if self.has_proj else pooled)
        return torch.cat(branches, dim=1)


class BNInception(nn.Module):
    """One BN-Inception stream for `size`² inputs; `in_channels` is 3 for RGB or 2L for stacked flow."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0, size: int = 224) -> None:
        super().__init__()
        c64, c192 = scaled(64, width), scaled(192, width)
        layers: list[tuple[str, nn.Module]] = [
            ("conv1", _unit(in_channels, c64, 7, 2)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("conv2_reduce", _unit(c64, c64, 1)),
            ("conv2", _unit(c64, c192, 3)),
            ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ]
        channels = c192
        extent = ceil_pooled(ceil_pooled((size - 1) // 2 + 1, 3, 2), 3, 2)  # conv1, pool1, pool2
        for name, *sizes, pool, stride in _MODULES:
            module = InceptionBN(channels, *(scaled(c, width) for c in sizes), pool, stride, extent)
            layers.append((name, module))
            channels = module.out_channels
            extent = -(-extent // stride)
        for name, module in layers:
            self.add_module(name, module)
        self.layer_names = [name for name, _ in layers]
        self.pool5 = nn.AdaptiveAvgPool2d(1)  # TSN's 7×7 average at 224², global at any size
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return self.fc(self.pool5(x).flatten(1))


class TSNBNInception(LateFusion):
    """RGB and flow BN-Inception streams, class scores averaged (TSN's two-stream fusion)."""

    def __init__(
        self, num_classes: int = 101, flow_fields: int = 5, width: float = 1.0, weights: tuple[float, float] = (1.0, 1.0),
        size: int = 224,
    ) -> None:
        super().__init__(
            BNInception(3, num_classes, width, size), BNInception(2 * flow_fields, num_classes, width, size), weights)
