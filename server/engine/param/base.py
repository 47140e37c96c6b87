"""The interface every parameterization offers the loop and the updaters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from kinetoscope.server.importer import InputSpec


class Parameterization(ABC):
    """A raw variable and its constraint for one input's batch of samples.

    The loop feeds `values` (model layout, always inside the constraint); an `Updater` steps
    the raw variable with Adam's moments `exp_avg` and `exp_avg_sq`, then calls `advance`."""

    name: ClassVar[str]
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor

    def __init__(self, spec: InputSpec, bound: float) -> None:
        self.spec, self.bound = spec, bound

    @property
    @abstractmethod
    def values(self) -> torch.Tensor:
        """The input values now, [B, *input shape], without autograd history."""

    def graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw leaf, values computed from it with autograd) for `step.update_parameterized`."""
        raise NotImplementedError(f"the {self.name} parameterization is stepped by its own kernel")

    def set_raw(self, raw: torch.Tensor) -> None:
        """The stepped raw variable (for parameterizations stepped through `graph`)."""
        raise NotImplementedError(f"the {self.name} parameterization is stepped by its own kernel")

    def advance(self) -> None:
        """After an update: the stepped values become the current ones."""

    def result(self, sample: int) -> np.ndarray:
        return self.values[sample].cpu().numpy().copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.name}, B={self.bound:g})"
