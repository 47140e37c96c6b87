"""Jitter: shift each sample's input by a random offset below the layer's stride, every step.

Shifts are circular (torch.roll semantics) and drawn per sample from that sample's own
generator, so a unit's result does not depend on which other units share its batch.
"""

from __future__ import annotations

import torch

from kinetoscope.server.importer import InputSpec


class Jitter:
    """Per-sample shift limits (the optimized layer's stride along H and W for this input)."""

    def __init__(self, spec: InputSpec, limits: list[tuple[int, int]]) -> None:
        self.spec = spec
        self.limits = [(max(1, int(h)), max(1, int(w))) for h, w in limits]
        layout = spec.layout
        self.axes = (layout.index("H"), layout.index("W"))

    def draw(self, generators: list[torch.Generator]) -> torch.Tensor:
        """[B, 2] shifts (dy, dx), each in [0, limit)."""
        rows = []
        for generator, (limit_h, limit_w) in zip(generators, self.limits):
            dy = int(torch.randint(0, limit_h, (1,), generator=generator)) if limit_h > 1 else 0
            dx = int(torch.randint(0, limit_w, (1,), generator=generator)) if limit_w > 1 else 0
            rows.append((dy, dx))
        return torch.tensor(rows, dtype=torch.long)

    def __call__(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        if not shifts.any():
            return x
        for column, axis in enumerate(self.axes):
            x = _roll_per_sample(x, shifts[:, column], axis)
        return x

    def __repr__(self) -> str:
        return f"Jitter({self.spec.name}, below {sorted(set(self.limits))})"


def _roll_per_sample(x: torch.Tensor, shifts: torch.Tensor, axis: int) -> torch.Tensor:
    size = x.shape[axis]
    index = (torch.arange(size, device=x.device).unsqueeze(0) - shifts.unsqueeze(1)) % size  # [B, size]
    view = [x.shape[0]] + [1] * (x.dim() - 1)
    view[axis] = size
    index = index.reshape(view).expand_as(x)
    return x.gather(axis, index)
