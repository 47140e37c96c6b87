"""Jitter: shift each sample's input by a random offset below the layer's stride, every step.

Shifts are circular (torch.roll semantics) and drawn per sample from that sample's own
generator, so a unit's result does not depend on which other units share its batch.
A roll is a permutation: its gradient is the inverse roll, which the fused optimizer
step applies to the network's gradient (`step.py`).
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
        if self.axes[1] != self.axes[0] + 1:
            raise ValueError(f"input {spec.name!r}: layout {layout!r} does not keep W right after H")

    def schedule(self, generators: list[torch.Generator], steps: int) -> torch.Tensor:
        """[steps, B, 2] shifts for a whole run, drawn per sample from its own generator in one call each."""
        columns = []
        for generator, (limit_h, limit_w) in zip(generators, self.limits):
            dy = torch.randint(0, limit_h, (steps,), generator=generator) if limit_h > 1 else torch.zeros(steps, dtype=torch.long)
            dx = torch.randint(0, limit_w, (steps,), generator=generator) if limit_w > 1 else torch.zeros(steps, dtype=torch.long)
            columns.append(torch.stack([dy, dx], dim=1))
        return torch.stack(columns, dim=1) if columns else torch.zeros(steps, 0, 2, dtype=torch.long)

    @property
    def moves(self) -> bool:
        """Whether any sample is ever shifted."""
        return any(h > 1 or w > 1 for h, w in self.limits)

    def __call__(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        return roll_plane(x, shifts, self.axes[0])

    def __repr__(self) -> str:
        return f"Jitter({self.spec.name}, below {sorted(set(self.limits))})"


def roll_plane(x: torch.Tensor, shifts: torch.Tensor, axis: int) -> torch.Tensor:
    """out[b, …, i, j, …] = x[b, …, (i − dy_b) mod H, (j − dx_b) mod W, …]."""
    h, w = x.shape[axis], x.shape[axis + 1]
    rows = (torch.arange(h, device=x.device).unsqueeze(0) - shifts[:, :1]) % h  # [B, H]
    cols = (torch.arange(w, device=x.device).unsqueeze(0) - shifts[:, 1:]) % w  # [B, W]
    index = (rows.unsqueeze(2) * w + cols.unsqueeze(1)).flatten(1)  # [B, H·W]
    plane = x.flatten(axis, axis + 1)
    view = [plane.shape[0]] + [1] * (plane.dim() - 1)
    view[axis] = h * w
    return plane.gather(axis, index.reshape(view).expand_as(plane)).unflatten(axis, (h, w))
