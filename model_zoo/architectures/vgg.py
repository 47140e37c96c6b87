"""VGG-16 two-stream network with conv fusion after conv5_3 (Feichtenhofer et al.).

Appearance: one RGB frame; motion: L stacked flow fields (2L channels). After conv5_3
the two streams are concatenated and fused by a 1×1 convolution (`conv5_fusion`),
followed by pool5 and fc6–fc8, as in the paper's Fig. 2 and Table 1. `width` scales
every channel count, so small test models keep the exact geometry of the full one.
"""

from __future__ import annotations

import torch
from collections import OrderedDict

from torch import nn

_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def vgg16_stream(in_channels: int, width: float = 1.0, pool_last: bool = True) -> nn.Sequential:
    """conv1_1 … conv5_3 with pool1–pool4 (and pool5 when `pool_last`)."""
    layers: list[tuple[str, nn.Module]] = []
    channels = in_channels
    for block, convs, out in _BLOCKS:
        out = max(1, round(out * width))
        for index in range(1, convs + 1):
            layers.append((f"conv{block}_{index}", nn.Conv2d(channels, out, 3, padding=1)))
            layers.append((f"relu{block}_{index}", nn.ReLU()))
            channels = out
        if block < 5 or pool_last:
            layers.append((f"pool{block}", nn.MaxPool2d(2, 2)))
    return nn.Sequential(OrderedDict(layers))


class TwoStreamVGG16(nn.Module):
    def __init__(self, num_classes: int = 101, flow_fields: int = 10, width: float = 1.0, size: int = 224) -> None:
        super().__init__()
        self.rgb = vgg16_stream(3, width, pool_last=False)
        self.flow = vgg16_stream(2 * flow_fields, width, pool_last=False)
        c5 = max(1, round(512 * width))
        fc = max(1, round(4096 * width))
        self.conv5_fusion = nn.Conv2d(2 * c5, c5, 1)
        self.relu5_fusion = nn.ReLU()
        self.pool5 = nn.MaxPool2d(2, 2)
        self.fc6 = nn.Linear(c5 * (size // 32) ** 2, fc)
        self.relu6 = nn.ReLU()
        self.fc7 = nn.Linear(fc, fc)
        self.relu7 = nn.ReLU()
        self.fc8 = nn.Linear(fc, num_classes)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        fused = self.relu5_fusion(self.conv5_fusion(torch.cat([self.rgb(rgb), self.flow(flow)], dim=1)))
        x = self.pool5(fused).flatten(1)
        x = self.relu7(self.fc7(self.relu6(self.fc6(x))))
        return self.fc8(x)
