"""The paper's parameterization: the input's values themselves, projected onto the B-ball after each step."""

from __future__ import annotations

import torch

from kinetoscope.server.importer import InputSpec

from ..geometry import canonical
from ..regularizers import project
from .base import Parameterization


class PixelParam(Parameterization):
    """Raw variable = values. They live in two buffers: a step reads `x` and writes `spare`,
    because the native loop reads a pixel's old neighbours for R_TV while it writes; `advance`
    swaps them. The constraint (`constrain`) runs inside the update kernels, fused with Adam."""

    name = "pixel"

    def __init__(self, spec: InputSpec, start: torch.Tensor, bound: float) -> None:
        super().__init__(spec, bound)
        self.x = start
        self.spare = torch.empty_like(start)
        moments = canonical(start, spec).shape
        self.exp_avg = torch.zeros(moments, device=start.device)
        self.exp_avg_sq = torch.zeros(moments, device=start.device)
        self.stepped = False
        """The update wrote `spare` this step."""

    @property
    def values(self) -> torch.Tensor:
        return self.x

    def constrain(self, view: torch.Tensor) -> torch.Tensor:
        """The projection onto the B-ball, on a canonical view."""
        return project(view, self.bound)

    def advance(self) -> None:
        if self.stepped:
            self.x, self.spare = self.spare, self.x
            self.stepped = False
