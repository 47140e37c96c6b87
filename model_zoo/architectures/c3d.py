"""C3D (Tran et al., "Learning spatiotemporal features with 3D convolutional networks", ICCV 2015).

Eight 3×3×3 convolutions (stride 1, padding 1) in five groups; pool1 is 1×2×2 so that
time is not collapsed too early, pool2–pool5 are 2×2×2. Pooling rounds up as in the
released Caffe model, which turns pool4's 7×7 grid into 4×4 for a 3×16×112×112 clip,
so fc6 sees 512·1·4·4 = 8192 inputs; fc6 and fc7 have 4096 units. Convolutions total
27,655,936 parameters, fc6 33,558,528, fc7 16,781,312: the network has 79,991,015
parameters with Sports-1M's 487 classes and 78,409,573 with UCF101's 101.

fc6 is sized for the clip, so the model is built for (`frames`, `size`). Every pool
must see at least 2 steps: pool5 then still pools, which takes 9 frames (9 → 5 → 3 → 2
through pool2–pool4) and 17 pixels (17 → 9 → 5 → 3 → 2 through pool1–pool4).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import scaled
from .limits import ceil_pooled

# (group, conv letters, output channels)
_GROUPS = [(1, "a", 64), (2, "a", 128), (3, "ab", 256), (4, "ab", 512), (5, "ab", 512)]


def _pooled(size: int) -> int:
    """Output length of a kernel-2, stride-2 pool with ceil rounding, over at least 2 steps."""
    if size < 2:
        raise ValueError("input too small for C3D's 2×2×2 pooling: use at least 9 frames and 17 pixels")
    return ceil_pooled(size, 2, 2)


class C3D(nn.Module):
    """C3D on a (3, frames, size, size) clip."""

    def __init__(self, num_classes: int = 487, frames: int = 16, size: int = 112, width: float = 1.0) -> None:
        super().__init__()
        self.layer_names: list[str] = []
        channels, t, s = 3, frames, size
        for group, letters, out in _GROUPS:
            out = scaled(out, width)
            for letter in letters:
                self._add(f"conv{group}{letter}", nn.Conv3d(channels, out, 3, padding=1))
                self._add(f"relu{group}{letter}", nn.ReLU())
                channels = out
            kernel = (1, 2, 2) if group == 1 else (2, 2, 2)
            self._add(f"pool{group}", nn.MaxPool3d(kernel, kernel, ceil_mode=True))
            t, s = (t if group == 1 else _pooled(t)), _pooled(s)
        fc = scaled(4096, width)
        self.fc6 = nn.Linear(channels * t * s * s, fc)
        self.relu6 = nn.ReLU()
        self.fc7 = nn.Linear(fc, fc)
        self.relu7 = nn.ReLU()
        self.fc8 = nn.Linear(fc, num_classes)

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self.layer_names.append(name)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = video
        for name in self.layer_names:
            x = getattr(self, name)(x)
        x = self.relu7(self.fc7(self.relu6(self.fc6(x.flatten(1)))))
        return self.fc8(x)
