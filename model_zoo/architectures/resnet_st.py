"""Spatiotemporal ResNet-50 (Feichtenhofer, Pinz & Wildes, NIPS 2016).

Two ResNet-50 streams (He et al. 2016): appearance sees one RGB frame, motion sees L
stacked optical-flow fields (2L channels). The streams interact through additive
motion→appearance connections into the appearance stream's residual units: at res2a,
res3a, res4a and res5a the motion stream's features at that depth (the output of the
block before the unit) are added to the input of the appearance unit's residual branch
only, x_a ← x_a + F(x_a + x_m), leaving the identity path x_a untouched (Sect. 3.2 of
the paper, "direct" connection from motion into appearance).

Layer names follow the MSRA Caffe ResNet-50 the paper starts from: `conv1`, `bn_conv1`,
`pool1`, `res2a` … `res5c` (each with `branch2a/b/c` and, at a projection, `branch1`),
`pool5`, `fc`; stride 2 sits in `branch2a` and `branch1`, as in that model (ResNet v1,
not torchvision's v1.5 — the parameter count is the same). The paper's temporal 3×1×1
filters across several input snippets are outside a single-snippet forward and omitted.

Prediction: each stream ends in global average pooling and its own `fc`, and the two
streams' class scores are averaged. Averaging keeps both streams' outputs meaningful on
their own and adds no parameters; a learned fusion layer on top is left out.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import scaled

_STAGES = [(2, 3, 64, 1), (3, 4, 128, 2), (4, 6, 256, 2), (5, 3, 512, 2)]  # stage, units, bottleneck width, stride
_EXPANSION = 4


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 residual unit; `inject` is added to the residual branch's input only."""

    def __init__(self, in_channels: int, mid: int, stride: int) -> None:
        super().__init__()
        out = mid * _EXPANSION
        self.branch2a = nn.Conv2d(in_channels, mid, 1, stride, bias=False)
        self.bn2a = nn.BatchNorm2d(mid)
        self.relu2a = nn.ReLU()
        self.branch2b = nn.Conv2d(mid, mid, 3, 1, 1, bias=False)
        self.bn2b = nn.BatchNorm2d(mid)
        self.relu2b = nn.ReLU()
        self.branch2c = nn.Conv2d(mid, out, 1, bias=False)
        self.bn2c = nn.BatchNorm2d(out)
        self.projection = stride != 1 or in_channels != out
        if self.projection:
            self.branch1 = nn.Conv2d(in_channels, out, 1, stride, bias=False)
            self.bn1 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.out_channels = out

    def forward(self, x: torch.Tensor, inject: torch.Tensor | None = None) -> torch.Tensor:
        branch = x if inject is None else x + inject
        branch = self.relu2a(self.bn2a(self.branch2a(branch)))
        branch = self.relu2b(self.bn2b(self.branch2b(branch)))
        branch = self.bn2c(self.branch2c(branch))
        shortcut = self.bn1(self.branch1(x)) if self.projection else x
        return self.relu(branch + shortcut)


class ResNet50Stream(nn.Module):
    """One ResNet-50 stream; `in_channels` is 3 for RGB or 2L for stacked flow."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn_conv1 = nn.BatchNorm2d(stem)
        self.conv1_relu = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)  # Caffe rounding: 112 → 56
        channels = stem
        self.stage_names: list[list[str]] = []
        for stage, units, mid, stride in _STAGES:
            names = []
            for index in range(units):
                name = f"res{stage}{chr(ord('a') + index)}"
                unit = Bottleneck(channels, scaled(mid, width), stride if index == 0 else 1)
                self.add_module(name, unit)
                channels = unit.out_channels
                names.append(name)
            self.stage_names.append(names)
        self.pool5 = nn.AdaptiveAvgPool2d(1)  # Caffe's 7×7 average at 224², global at any size
        self.fc = nn.Linear(channels, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool1(self.conv1_relu(self.bn_conv1(self.conv1(x))))

    def stages(self) -> list[list[Bottleneck]]:
        return [[getattr(self, name) for name in names] for names in self.stage_names]

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool5(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for units in self.stages():
            for unit in units:
                x = unit(x)
        return self.head(x)


class SpatiotemporalResNet50(nn.Module):
    """Appearance (`rgb`) and motion (`flow`) ResNet-50s with motion→appearance residual connections."""

    def __init__(self, num_classes: int = 101, flow_fields: int = 10, width: float = 1.0) -> None:
        super().__init__()
        self.rgb = ResNet50Stream(3, num_classes, width)
        self.flow = ResNet50Stream(2 * flow_fields, num_classes, width)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        appearance, motion = self.rgb.stem(rgb), self.flow.stem(flow)
        for units_a, units_m in zip(self.rgb.stages(), self.flow.stages()):
            appearance = units_a[0](appearance, inject=motion)
            motion = units_m[0](motion)
            for unit_a, unit_m in zip(units_a[1:], units_m[1:]):
                appearance, motion = unit_a(appearance), unit_m(motion)
        return 0.5 * (self.rgb.head(appearance) + self.flow.head(motion))
