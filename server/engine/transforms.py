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
        if self.axes[1] != self.axes[0] + 1:
            raise ValueError(f"input {spec.name!r}: layout {layout!r} does not keep W right after H")

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
        return _PerSampleRoll.apply(x, shifts, self.axes[0])

    def __repr__(self) -> str:
        return f"Jitter({self.spec.name}, below {sorted(set(self.limits))})"


class _PerSampleRoll(torch.autograd.Function):
    """Rolls sample b by shifts[b] = (dy, dx) along the adjacent axes (h, h + 1).

    One gather over the flattened H×W plane; the gradient of a permutation is the inverse
    permutation, so backward is one more gather rather than a zero fill and a scatter-add.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, shifts: torch.Tensor, axis: int) -> torch.Tensor:
        ctx.shifts, ctx.axis = shifts, axis
        return _roll_plane(x, shifts, axis)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _roll_plane(grad, -ctx.shifts, ctx.axis), None, None


def _roll_plane(x: torch.Tensor, shifts: torch.Tensor, axis: int) -> torch.Tensor:
    """out[b, …, i, j, …] = x[b, …, (i − dy_b) mod H, (j − dx_b) mod W, …]."""
    h, w = x.shape[axis], x.shape[axis + 1]
    rows = (torch.arange(h, device=x.device).unsqueeze(0) - shifts[:, :1]) % h  # [B, H]
    cols = (torch.arange(w, device=x.device).unsqueeze(0) - shifts[:, 1:]) % w  # [B, W]
    index = (rows.unsqueeze(2) * w + cols.unsqueeze(1)).flatten(1)  # [B, H·W]
    plane = x.flatten(axis, axis + 1)
    view = [plane.shape[0]] + [1] * (plane.dim() - 1)
    view[axis] = h * w
    return plane.gather(axis, index.reshape(view).expand_as(plane)).unflatten(axis, (h, w))
