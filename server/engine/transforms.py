"""Jitter: shift each sample's input by a random offset below the layer's stride, every step.

Shifts are circular (torch.roll semantics) and follow from the run's seed and each
sample's limit, so a unit's result does not depend on which other units share its batch.
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
        self.shared = len(set(self.limits)) <= 1
        """Every sample has the same limits, so `schedule` gives them the same shift at every step."""

    def schedule(self, seed: int, steps: int) -> torch.Tensor:
        """[steps, B, 2] shifts (dy, dx) for a whole run, each in [0, limit).

        One uniform draw per step and axis, from `seed` alone, scaled by each sample's
        limit: a sample's shifts depend on its limits and the seed, never on its batch,
        and samples with the same limits (all units of one layer) share a shift, which
        `roll` then applies to the whole batch at once.
        """
        draws = torch.rand(steps, 1, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        limits = torch.tensor(self.limits, dtype=torch.float64).reshape(1, -1, 2)
        return (draws * limits).floor().long().clamp_max(limits.long() - 1)

    def steps(self, seed: int, steps: int) -> list:
        """`schedule` split by step: the [B, 2] shifts of each step, or, when `shared`, one
        (dy, dx) pair of ints, which `roll` takes without reading a tensor."""
        schedule = self.schedule(seed, steps)
        return [tuple(pair) for pair in schedule[:, 0].tolist()] if self.shared else list(schedule.unbind())

    @property
    def moves(self) -> bool:
        """Whether any sample is ever shifted."""
        return any(h > 1 or w > 1 for h, w in self.limits)

    def __call__(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        return roll_plane(x, shifts, self.axes[0])

    def roll(self, x: torch.Tensor, shifts: torch.Tensor | tuple[int, int], inverse: bool = False) -> torch.Tensor:
        """The whole batch rolled by the shift every sample shares (`shared`): one copy, no index arithmetic."""
        dy, dx = shifts if isinstance(shifts, tuple) else shifts[0].tolist()
        sign = -1 if inverse else 1
        return torch.roll(x, (sign * dy, sign * dx), self.axes)

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
