"""I3D: Inflated Inception-v1 (Carreira & Zisserman, "Quo vadis, action recognition?", CVPR 2017).

GoogLeNet (Szegedy et al. 2015) with BatchNorm, every N×N filter and pool inflated to
N×N×N, except the first two max-pools (1×3×3, no temporal stride) and a 2×2×2 pool
before mixed_5b. Names are those of DeepMind's release in lower case
(`conv3d_1a_7x7`, `mixed_3b` … `mixed_5c`, `branch_1/conv3d_0b_3x3`, `logits`).

Padding is TensorFlow's SAME, which the released model was trained with: the output is
⌈n / stride⌉ and a pad that cannot be split evenly puts the extra row at the end. The
pads depend on the input extent, so the model is built for a clip size (`frames`,
`size`), like its final 2×7×7 average pool (7×7 being the grid at 224²). Zero padding
before a max-pool equals TF's −∞ padding here because every pooled tensor follows a
ReLU. The 1×1×1 `logits` convolution yields scores for each remaining time step,
averaged over time as in the release. With 400 classes the model has 12,697,264
parameters (BN with scale and shift, as in the widely used PyTorch port; DeepMind's
Sonnet BN has no scale, 12,689,984). Without the 400-way `logits` the
backbone has 12,287,264, the "12M" of the paper's Table 1.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .common import scaled

Shape = tuple[int, int, int]

# name: (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3 (the 5x5 branch in GoogLeNet), pool proj)
_MIXED = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


def _same(shape: Shape, kernel: Shape, stride: Shape) -> tuple[Shape, list[tuple[int, int]]]:
    """TF SAME output extent and (front, back) pads along T, H, W."""
    out, pads = [], []
    for n, k, s in zip(shape, kernel, stride):
        o = -(-n // s)
        total = max((o - 1) * s + k - n, 0)
        out.append(o)
        pads.append((total // 2, total - total // 2))
    return (out[0], out[1], out[2]), pads


def _padded(layer: partial, pads: list[tuple[int, int]]) -> list[tuple[str, nn.Module]]:
    """`layer` with symmetric pads built in, or preceded by an explicit (asymmetric) zero pad."""
    if all(front == back for front, back in pads):
        return [("", layer(padding=tuple(front for front, _ in pads)))]
    flat = tuple(p for front, back in reversed(pads) for p in (front, back))  # (W, H, T) order
    return [("pad", nn.ConstantPad3d(flat, 0.0)), ("", layer(padding=0))]


class Unit3D(nn.Sequential):
    """SAME-padded Conv3d (no bias) + BN (eps 1e-3) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: Shape, shape: Shape, stride: Shape = (1, 1, 1)) -> None:
        super().__init__()
        self.out_shape, pads = _same(shape, kernel, stride)
        for name, module in _padded(partial(nn.Conv3d, cin, cout, kernel, stride, bias=False), pads):
            self.add_module(name or "conv", module)
        self.add_module("bn", nn.BatchNorm3d(cout, eps=1e-3))
        self.add_module("relu", nn.ReLU())


class MaxPool3dSame(nn.Sequential):
    """SAME-padded max pooling."""

    def __init__(self, kernel: Shape, stride: Shape, shape: Shape) -> None:
        super().__init__()
        self.out_shape, pads = _same(shape, kernel, stride)
        for name, module in _padded(partial(nn.MaxPool3d, kernel, stride), pads):
            self.add_module(name or "pool", module)


class Mixed(nn.Module):
    """Inflated inception module: 1×1×1, 3×3×3, 3×3×3 and pooled 1×1×1 branches."""

    def __init__(self, cin: int, sizes: tuple[int, ...], shape: Shape) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = sizes
        one, three = (1, 1, 1), (3, 3, 3)
        self.branch_0 = nn.Sequential()
        self.branch_0.add_module("conv3d_0a_1x1", Unit3D(cin, c0, one, shape))
        self.branch_1 = nn.Sequential()
        self.branch_1.add_module("conv3d_0a_1x1", Unit3D(cin, c1a, one, shape))
        self.branch_1.add_module("conv3d_0b_3x3", Unit3D(c1a, c1b, three, shape))
        self.branch_2 = nn.Sequential()
        self.branch_2.add_module("conv3d_0a_1x1", Unit3D(cin, c2a, one, shape))
        self.branch_2.add_module("conv3d_0b_3x3", Unit3D(c2a, c2b, three, shape))
        self.branch_3 = nn.Sequential()
        self.branch_3.add_module("maxpool3d_0a_3x3", MaxPool3dSame(three, one, shape))
        self.branch_3.add_module("conv3d_0b_1x1", Unit3D(cin, c3, one, shape))
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


class I3D(nn.Module):
    """Inflated Inception-v1 on a (3, frames, size, size) clip (2 channels for the flow variant)."""

    def __init__(self, num_classes: int = 400, frames: int = 64, size: int = 224, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.layer_names: list[str] = []
        shape: Shape = (frames, size, size)
        channels = in_channels

        def unit(name: str, cout: int, kernel: Shape, stride: Shape = (1, 1, 1)) -> None:
            nonlocal shape, channels
            module = Unit3D(channels, scaled(cout, width), kernel, shape, stride)
            shape, channels = module.out_shape, scaled(cout, width)
            self._add(name, module)

        def pool(name: str, kernel: Shape, stride: Shape) -> None:
            nonlocal shape
            module = MaxPool3dSame(kernel, stride, shape)
            shape = module.out_shape
            self._add(name, module)

        def mixed(name: str) -> None:
            nonlocal channels
            module = Mixed(channels, tuple(scaled(c, width) for c in _MIXED[name]), shape)
            channels = module.out_channels
            self._add(name, module)

        unit("conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2))
        pool("maxpool3d_2a_3x3", (1, 3, 3), (1, 2, 2))
        unit("conv3d_2b_1x1", 64, (1, 1, 1))
        unit("conv3d_2c_3x3", 192, (3, 3, 3))
        pool("maxpool3d_3a_3x3", (1, 3, 3), (1, 2, 2))
        mixed("mixed_3b")
        mixed("mixed_3c")
        pool("maxpool3d_4a_3x3", (3, 3, 3), (2, 2, 2))
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            mixed(name)
        pool("maxpool3d_5a_2x2", (2, 2, 2), (2, 2, 2))
        mixed("mixed_5b")
        mixed("mixed_5c")
        t, h, w = shape
        self.avgpool = nn.AvgPool3d((min(2, t), h, w), stride=1)
        self.logits = nn.Conv3d(channels, num_classes, 1)

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self.layer_names.append(name)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return self.logits(self.avgpool(x)).flatten(2).mean(dim=2)
