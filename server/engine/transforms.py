"""Transforms of the input the network sees each step (Lucid's `transform`): a list a user can edit, and `compose`.

Every transform here is a circular shift of the H×W planes (torch.roll semantics) drawn
for the whole run from its seed, so a list composes into one shift per step and sample:
the torch path rolls the input by it and the inverse roll undoes it on the gradient
(`step.py`); the native loop applies the same shifts (`fused_update.c`). Jitter is the
first: a random offset below the optimized layer's stride, every step. Shifts follow
from the run's seed and each sample's limit, so a unit's result does not depend on which
other units share its batch.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from kinetoscope.server.importer import InputSpec

Limits = list[tuple[int, int]]
"""Per sample: the optimized layers' smallest stride along H and W for one input."""


class Shift:
    """A per-step, per-sample shift of the H×W planes of one input."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        layout = spec.layout
        self.axes = (layout.index("H"), layout.index("W"))
        if self.axes[1] != self.axes[0] + 1:
            raise ValueError(f"input {spec.name!r}: layout {layout!r} does not keep W right after H")

    shared: bool = True
    """`schedule` gives every sample the same shift at every step."""
    moves: bool = False
    """Whether any sample is ever shifted."""

    def schedule(self, seed: int, steps: int) -> torch.Tensor:
        """[steps, B, 2] shifts (dy, dx) for a whole run."""
        raise NotImplementedError

    def steps(self, schedule: torch.Tensor) -> list:
        """A `schedule` split by step: the [B, 2] shifts of each step, or, when `shared`, one
        (dy, dx) pair of ints, which `roll` takes without reading a tensor."""
        return [tuple(pair) for pair in schedule[:, 0].tolist()] if self.shared else list(schedule.unbind())

    def __call__(self, x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        return roll_plane(x, shifts, self.axes[0])

    def roll(self, x: torch.Tensor, shifts: tuple[int, int], inverse: bool = False) -> torch.Tensor:
        """The whole batch rolled by the (dy, dx) every sample shares (`shared`; one of `steps`)."""
        dy, dx = shifts
        sign = -1 if inverse else 1
        return roll_by_copies(x, sign * dy, sign * dx, self.axes[0])


class Jitter(Shift):
    """Per-sample shift limits (the optimized layer's stride along H and W for this input)."""

    def __init__(self, spec: InputSpec, limits: Limits) -> None:
        super().__init__(spec)
        self.limits = [(max(1, int(h)), max(1, int(w))) for h, w in limits]
        self.shared = len(set(self.limits)) <= 1
        self.moves = any(h > 1 or w > 1 for h, w in self.limits)

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

    def __repr__(self) -> str:
        return f"Jitter({self.spec.name}, below {sorted(set(self.limits))})"


class Compose(Shift):
    """Transforms applied in order, as one shift per step: the sum of theirs (the i-th draws from seed + i)."""

    def __init__(self, spec: InputSpec, transforms: Sequence[Shift]) -> None:
        super().__init__(spec)
        for transform in transforms:
            if not isinstance(transform, Shift):
                raise TypeError(f"expected transforms that shift the input (Jitter, ...), got {type(transform).__name__}")
        self.transforms = list(transforms)
        moving = [t for t in self.transforms if t.moves]
        self.moves = bool(moving)
        self.shared = all(t.shared for t in moving)

    def schedule(self, seed: int, steps: int) -> torch.Tensor:
        parts = [t.schedule(seed + i, steps) for i, t in enumerate(self.transforms) if t.moves]
        return parts[0] if len(parts) == 1 else torch.stack(parts).sum(0)

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def standard_transforms(spec: InputSpec, limits: Limits) -> list[Shift]:
    """The paper's transforms of one input: jitter below the optimized layers' strides."""
    return [Jitter(spec, limits)]


TransformFactory = Callable[[InputSpec, Limits], Sequence[Shift]]
"""What `maximize` takes to build an input's transform list (default `standard_transforms`)."""


def compose(spec: InputSpec, transforms: Sequence[Shift]) -> Compose:
    return Compose(spec, transforms)


ROLL_COPIES_FROM = 1 << 16
"""Elements from which `roll_by_copies` copies blocks instead of calling torch.roll."""


def roll_by_copies(x: torch.Tensor, dy: int, dx: int, axis: int) -> torch.Tensor:
    """torch.roll(x, (dy, dx), (axis, axis + 1)), bit for bit, as at most four block copies.

    On the CPU torch.roll rolls one axis at a time through index arithmetic and a cat:
    measured 0.94 ms for a [16, 20, 32, 32] flow batch against 0.22 ms for the four
    copies, and 3.4 against 0.6 ms at batch 64. Below `ROLL_COPIES_FROM` elements the
    single call is cheaper than four.
    """
    if x.numel() < ROLL_COPIES_FROM:
        return torch.roll(x, (dy, dx), (axis, axis + 1))
    out = torch.empty_like(x)
    lead = (slice(None),) * axis
    for rows_to, rows_from in _pieces(dy % x.shape[axis], x.shape[axis]):
        for cols_to, cols_from in _pieces(dx % x.shape[axis + 1], x.shape[axis + 1]):
            out[(*lead, rows_to, cols_to)] = x[(*lead, rows_from, cols_from)]
    return out


def _pieces(shift: int, size: int) -> list[tuple[slice, slice]]:
    """(destination, source) ranges of a circular shift by 0 ≤ shift < size along one axis."""
    if shift == 0:
        return [(slice(0, size), slice(0, size))]
    return [(slice(shift, size), slice(0, size - shift)), (slice(0, shift), slice(size - shift, size))]


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
