"""Small two-stream and 3D ConvNets that train on the synthetic actions in minutes on a CPU.

They are the trained counterparts of the zoo's big architectures: few enough
parameters (~70k) to ship as files under 1 MB, yet with the structure the
visualizations study (separate appearance and motion streams joined by a fusion
convolution; spatiotemporal 3D filters). Both take raw kinetoscope inputs in
-128..127 and scale them by a fixed 1/64 first, so that no preprocessing lives
outside the exported graph.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import ConvBNReLU

INPUT_SCALE = 1.0 / 64.0


class SmallStream(nn.Module):
    """Three conv-BN-ReLU blocks (3×3), each of the first two followed by 2×2 max pooling: 32² → 8²."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int] = (16, 32, 32)) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, widths[0], 3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = ConvBNReLU(widths[0], widths[1], 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = ConvBNReLU(widths[1], widths[2], 3, padding=1)
        self.out_channels = widths[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.pool2(self.conv2(self.pool1(self.conv1(x)))))


class SmallTwoStream(nn.Module):
    """Appearance (`rgb`) and motion (`flow`) streams fused by a 3×3 convolution before pooling.

    Fusing convolutionally (not by averaging scores) lets `conv_fusion` units respond
    to a colour *and* a motion at the same place, which is what separates classes that
    share a colour or a direction (the synthetic fusion quadruple).
    """

    def __init__(self, num_classes: int = 10, flow_fields: int = 10, fusion_channels: int = 64) -> None:
        super().__init__()
        self.rgb = SmallStream(3)
        self.flow = SmallStream(2 * flow_fields)
        share_across_fields(self.flow.conv1.conv.weight, flow_fields)
        self.conv_fusion = ConvBNReLU(self.rgb.out_channels + self.flow.out_channels, fusion_channels, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(fusion_channels, num_classes)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([self.rgb(rgb * INPUT_SCALE), self.flow(flow * INPUT_SCALE)], dim=1)
        return self.fc(torch.flatten(self.pool(self.conv_fusion(fused)), 1))


@torch.no_grad()
def share_across_fields(weight: torch.Tensor, fields: int) -> None:
    """Start every flow field's filter taps equal, as TSN's cross-modality initialization does.

    A random start gives each of the L stacked fields its own taps. Training clips move
    at a steady velocity, so their fields are nearly alike and the differences between
    fields' taps get almost no gradient: they stay random. Activation maximization with
    little temporal regularization then exploits those leftovers and draws each field
    moving its own way. Starting equal leaves only differences the data asks for.
    """
    per_field = weight.shape[1] // fields
    weight.copy_(weight[:, :per_field].repeat(1, fields, *[1] * (weight.dim() - 2)))


@torch.no_grad()
def constant_over_time(weight: torch.Tensor) -> None:
    """Start 3D filters equal at every time tap, as I3D inflates 2D filters.

    Random temporal taps respond to arbitrary changes over time, and a class score keeps
    whatever of that the data never contradicts: its optimized clip then flickers and
    drifts any way. Filters that start static only become temporal where telling classes
    apart needs it, so the motion a unit prefers is motion the data taught it.
    """
    weight.copy_(weight.mean(dim=2, keepdim=True).expand_as(weight))


class Small3D(nn.Module):
    """3×3×3 conv-BN-ReLU blocks on an RGB clip: spatial pooling first, time pooled after conv2.

    Keeping full temporal resolution through conv2 lets the filters see frame-to-frame
    displacements of a few pixels, which is all that tells direction and speed apart
    when appearance is shared; global pooling makes any clip length T ≥ 2 acceptable.
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(3, widths[0], 3, padding=1, dims=3)
        self.pool1 = nn.MaxPool3d((1, 2, 2))
        self.conv2 = ConvBNReLU(widths[0], widths[1], 3, padding=1, dims=3)
        self.pool2 = nn.MaxPool3d((2, 2, 2), ceil_mode=True)
        self.conv3 = ConvBNReLU(widths[1], widths[2], 3, padding=1, dims=3)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        for block in (self.conv1, self.conv2, self.conv3):
            constant_over_time(block.conv.weight)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(video * INPUT_SCALE))
        x = self.conv3(self.pool2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))
