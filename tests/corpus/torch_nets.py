"""Tiny torch versions of the video ConvNet families kinetoscope has to import.

Widths are a handful of channels: the point is the graph structure (where BNs sit,
which ones can be folded), not accuracy. Each spec records its expected BN counts so
exported files can be checked against what the module really contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .common import random_bn_stats

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def randomize_batchnorm(module: nn.Module, seed: int) -> nn.Module:
    """Give every BN of ``module`` random statistics and switch it to inference mode."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, BN_TYPES):
                stats = random_bn_stats(rng, bn.num_features)
                bn.weight.copy_(torch.from_numpy(stats.scale))
                bn.bias.copy_(torch.from_numpy(stats.bias))
                bn.running_mean.copy_(torch.from_numpy(stats.mean))
                bn.running_var.copy_(torch.from_numpy(stats.var))
    return module.eval()


def conv_bn(conv: nn.Module, relu: bool = True) -> nn.Sequential:
    """conv → BN (→ ReLU): the foldable unit every family is built from."""
    out = conv.out_channels
    bn = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.ConvTranspose2d: nn.BatchNorm2d}.get(
        type(conv), nn.BatchNorm3d
    )(out)
    layers: list[nn.Module] = [conv, bn]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# --- two-stream 2D (Simonyan & Zisserman; Feichtenhofer conv fusion) -------------


def _stream2d(in_ch: int) -> nn.Sequential:
    return nn.Sequential(
        conv_bn(nn.Conv2d(in_ch, 8, 3, padding=1)),
        nn.MaxPool2d(2),
        conv_bn(nn.Conv2d(8, 12, 3, padding=1)),
        nn.MaxPool2d(2),
        conv_bn(nn.Conv2d(12, 12, 3, padding=1)),
    )


class TwoStream2D(nn.Module):
    """Appearance + motion streams fused by a conv after the last conv block."""

    def __init__(self, flow_frames: int = 10, classes: int = 10) -> None:
        super().__init__()
        self.appearance = _stream2d(3)
        self.motion = _stream2d(2 * flow_frames)
        self.conv5_fusion = conv_bn(nn.Conv2d(24, 16, 3, padding=1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc6 = nn.Linear(16, 16)
        self.bn6 = nn.BatchNorm1d(16)  # Gemm → BN
        self.fc7 = nn.Linear(16, classes)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([self.appearance(rgb), self.motion(flow)], dim=1)
        x = torch.flatten(self.pool(self.conv5_fusion(fused)), 1)
        return self.fc7(torch.relu(self.bn6(self.fc6(x))))


# --- 3D ResNet (Hara et al.) -----------------------------------------------------


class BasicBlock3D(nn.Module):
    """conv3d-BN-ReLU-conv3d-BN + shortcut; a strided 1x1x1 projection when shapes change."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False))
        self.conv2 = conv_bn(nn.Conv3d(out_ch, out_ch, 3, padding=1, bias=False), relu=False)
        self.downsample = (
            conv_bn(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), relu=False)
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + shortcut)


class ResNet3D(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False))
        self.layer1 = BasicBlock3D(8, 8)
        self.layer2 = BasicBlock3D(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(video)))
        return self.fc(torch.flatten(self.pool(x), 1))


# --- R(2+1)D (Tran et al.) -------------------------------------------------------


def conv2plus1d(in_ch: int, out_ch: int, mid: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """1xkxk spatial conv-BN-ReLU then kx1x1 temporal conv-BN."""
    return nn.Sequential(
        conv_bn(nn.Conv3d(in_ch, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)),
        conv_bn(nn.Conv3d(mid, out_ch, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False), relu=relu),
    )


class Block2Plus1D(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv2plus1d(in_ch, out_ch, mid=out_ch, stride=stride)
        self.conv2 = conv2plus1d(out_ch, out_ch, mid=out_ch, relu=False)
        self.downsample = (
            conv_bn(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), relu=False)
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + shortcut)


class R2Plus1D(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = conv2plus1d(3, 8, mid=6, stride=2, relu=True)
        self.layer1 = Block2Plus1D(8, 8)
        self.layer2 = Block2Plus1D(8, 12, stride=2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(12, classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(video)))
        return self.fc(torch.flatten(self.pool(x), 1))


# --- Inception 3D (I3D / S3D-like) ----------------------------------------------


class Inception3DBlock(nn.Module):
    """Three branches concatenated, then a BN on the concat (not foldable)."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch0 = conv_bn(nn.Conv3d(in_ch, 6, 1, bias=False))
        self.branch1 = nn.Sequential(
            conv_bn(nn.Conv3d(in_ch, 8, 1, bias=False)),
            conv_bn(nn.Conv3d(8, 8, 3, padding=1, groups=8, bias=False)),  # depthwise
            conv_bn(nn.Conv3d(8, 8, 1, bias=False)),
        )
        self.branch2 = nn.Sequential(
            nn.MaxPool3d(3, stride=1, padding=1),
            conv_bn(nn.Conv3d(in_ch, 4, 1, bias=False)),
        )
        self.bn_concat = nn.BatchNorm3d(18)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)
        return torch.relu(self.bn_concat(y))


class Inception3D(nn.Module):
    """A flow-stream I3D: two-channel optical flow over time."""

    def __init__(self, in_ch: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(nn.Conv3d(in_ch, 8, 3, stride=(1, 2, 2), padding=1, bias=False))
        self.pool1 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)
        self.mixed = Inception3DBlock(8)
        self.pool2 = nn.MaxPool3d((2, 3, 3), stride=2, ceil_mode=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.logits = nn.Conv3d(18, classes, 1)  # I3D's 1x1x1 conv classifier

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        x = self.pool2(self.mixed(self.pool1(self.stem(flow))))
        return torch.flatten(self.logits(self.pool(x)), 1)


# --- SlowFast (Feichtenhofer et al.) ---------------------------------------------


class SlowFast(nn.Module):
    """Slow (4 frames) and fast (16 frames) pathways with a time-strided lateral."""

    def __init__(self, alpha: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.slow_stem = conv_bn(nn.Conv3d(3, 8, (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=False))
        self.fast_stem = conv_bn(nn.Conv3d(3, 2, (5, 5, 5), stride=(1, 2, 2), padding=2, bias=False))
        self.lateral = conv_bn(
            nn.Conv3d(2, 4, (5, 1, 1), stride=(alpha, 1, 1), padding=(2, 0, 0), bias=False)
        )
        self.slow_res = conv_bn(nn.Conv3d(12, 16, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False))
        self.fast_res = conv_bn(nn.Conv3d(2, 4, (3, 3, 3), stride=(1, 2, 2), padding=1, bias=False))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(20, classes)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        fast_x = self.fast_stem(fast)
        slow_x = torch.cat([self.slow_stem(slow), self.lateral(fast_x)], dim=1)
        pooled = [torch.flatten(self.pool(self.slow_res(slow_x)), 1), torch.flatten(self.pool(self.fast_res(fast_x)), 1)]
        return self.fc(torch.cat(pooled, dim=1))


# --- pre-activation ResNet 2D (He et al., identity mappings) ---------------------


class PreActBlock(nn.Module):
    """BN → ReLU → conv twice; the first BN reads a residual sum or a shared tensor."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if stride != 1 or in_ch != out_ch else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        return self.conv2(torch.relu(self.bn2(self.conv1(pre)))) + shortcut


class PreActResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block1 = PreActBlock(8, 8)
        self.block2 = PreActBlock(8, 16, stride=2)
        self.bn_final = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(rgb)))
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn_final(x))), 1))


# --- ConvTranspose → BN and Conv1d → BN ------------------------------------------


class Deconv2D(nn.Module):
    """An encoder-decoder piece: strided conv down, ConvTranspose-BN back up."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.down = conv_bn(nn.Conv2d(3, 8, 3, stride=2, padding=1))
        self.up = conv_bn(nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1))
        self.head = nn.Conv2d(6, classes, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.down(rgb)))


class TemporalConv1D(nn.Module):
    """Per-frame 2D features pooled over space, then Conv1d-BN over time."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.frame = conv_bn(nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.temporal = conv_bn(nn.Conv1d(8, 12, 3, padding=1))
        self.fc = nn.Linear(12, classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        per_frame = self.frame(video).mean(dim=(3, 4))  # N, C, T
        return self.fc(self.temporal(per_frame).mean(dim=2))


# --- registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class TorchSpec:
    """What to build, what to feed it, and how many BNs the export must keep."""

    name: str
    build: Callable[[], nn.Module]
    inputs: tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape, kind)
    bn_count: int
    foldable_bn: int
    notes: str

    def example_inputs(self, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(shape, generator=gen) for _, shape, _ in self.inputs)


SPECS: dict[str, TorchSpec] = {
    spec.name: spec
    for spec in (
        TorchSpec(
            "two_stream_2d",
            TwoStream2D,
            (("rgb", (1, 3, 32, 32), "image"), ("flow", (1, 20, 32, 32), "stacked_flow")),
            bn_count=8,
            foldable_bn=8,
            notes="two 2D streams, concat + conv5_fusion, Linear → BatchNorm1d (Gemm fold)",
        ),
        TorchSpec(
            "resnet3d",
            ResNet3D,
            (("video", (1, 3, 8, 32, 32), "video"),),
            bn_count=6,
            foldable_bn=6,
            notes="3D BasicBlocks, strided block with 1x1x1 conv-BN projection",
        ),
        TorchSpec(
            "r2plus1d",
            R2Plus1D,
            (("video", (1, 3, 8, 32, 32), "video"),),
            bn_count=11,
            foldable_bn=11,
            notes="(2+1)D: 1x3x3 spatial conv-BN-ReLU, 3x1x1 temporal conv-BN",
        ),
        TorchSpec(
            "inception3d",
            Inception3D,
            (("flow", (1, 2, 8, 32, 32), "flow_video"),),
            bn_count=7,
            foldable_bn=6,
            notes="flow-stream I3D: depthwise conv3d-BN, ceil_mode MaxPool3d, BN after Concat",
        ),
        TorchSpec(
            "slowfast",
            SlowFast,
            (("slow", (1, 3, 4, 32, 32), "video"), ("fast", (1, 3, 16, 32, 32), "video")),
            bn_count=5,
            foldable_bn=5,
            notes="two pathways, time-strided lateral conv-BN from fast into slow, channel concat",
        ),
        TorchSpec(
            "preact",
            PreActResNet,
            (("rgb", (1, 3, 32, 32), "image"),),
            bn_count=5,
            foldable_bn=2,
            notes="pre-activation: BNs on residual sums and shared tensors are not foldable",
        ),
        TorchSpec(
            "deconv2d",
            Deconv2D,
            (("rgb", (1, 3, 32, 32), "image"),),
            bn_count=2,
            foldable_bn=2,
            notes="ConvTranspose2d → BN",
        ),
        TorchSpec(
            "temporal_conv1d",
            TemporalConv1D,
            (("video", (1, 3, 8, 32, 32), "video"),),
            bn_count=2,
            foldable_bn=2,
            notes="spatial mean then Conv1d → BatchNorm1d over time",
        ),
    )
}
