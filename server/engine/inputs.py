"""One graph input of a run: which samples read it, its seeded start and parameterization, its
regularizer weights and its transforms."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from kinetoscope.server.importer import InputSpec

from .config import MaximizeConfig, Setting
from .objectives import Objective
from .param import Parameterization, make_param
from .regularizers import RegularizerWeights
from .step import InputConstants, Kernels
from .transforms import Compose


class OptimizedInput:
    """An input's batch of samples: the parameterization the updater steps, and the shifted copy the network sees."""

    def __init__(self, spec: InputSpec, active: list[bool], transform: Compose, config: MaximizeConfig,
                 generators: Sequence[torch.Generator], device: torch.device | str) -> None:
        self.spec = spec
        self.active = torch.tensor(active, device=device)
        self.used = bool(self.active.any())
        """Some sample of the chunk reads this input (otherwise it is fed zeros and never stepped)."""
        self.weights = RegularizerWeights.for_input(spec, alpha=config.alpha, bound=config.bound,
                                                    v_ratio=config.v_ratio, motion_tv_factor=config.motion_tv_factor)
        self.transform = transform
        self.constants = InputConstants(spec.layout, spec.kind, transform.axes[0], self.weights)
        self.param: Parameterization = make_param(config.param, spec, seeded_start(spec, self.active, config, self.weights.bound,
                                                                                   generators), self.weights.bound)
        self.schedule: torch.Tensor | None = None
        """[steps, B, 2] shifts (None: never moved), for the native loop."""
        self.shifts: list | None = None
        """Per step: a (dy, dx) pair every sample shares, or [B, 2] shifts."""
        self.prepared: torch.Tensor | None = None
        """This step's shifted input, when the native loop wrote it in the last step."""

    def plan_shifts(self, seed: int, steps: int) -> None:
        """The run's shifts, drawn once."""
        if self.transform.moves:
            self.schedule = self.transform.schedule(seed, steps)
            self.shifts = self.transform.steps(self.schedule)

    def feed(self, kernels: Kernels, step: int) -> torch.Tensor:
        """This step's (shifted) input, a leaf whose gradient the update reads."""
        values = self.param.values
        if not self.used:
            return values
        if self.prepared is not None:
            moved = self.prepared
        elif self.shifts is None:
            moved = values
        elif self.transform.shared:
            moved = self.transform.roll(values, self.shifts[step])
        else:
            moved = kernels.jitter(values, self.shifts[step].to(values.device), self.transform.axes[0])
        return moved.detach().requires_grad_(True)

    def unshift(self, grad: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(gradient, per-sample shifts still to undo on it): a shift every sample shares is undone
        here by one roll; per-sample ones are left to the update."""
        shifts = None if self.shifts is None else self.shifts[step]
        if shifts is not None and self.transform.shared:
            return self.transform.roll(grad, shifts, inverse=True), None
        return grad, None if shifts is None else shifts.to(grad.device)

    def result(self, sample: int) -> np.ndarray | None:
        return self.param.result(sample) if self.active[sample] else None


def seeded_start(spec: InputSpec, active: torch.Tensor, config: MaximizeConfig, bound: float,
                 generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Every sample's random start (`init_scale`·B standard deviation, from its own generator); zeros
    for samples that do not read this input."""
    shape = tuple(spec.shape[1:])
    start = [torch.randn(shape, generator=g) * (config.init_scale * bound) for g in generators]
    return torch.stack(start).to(active.device) * active.reshape(-1, *[1] * len(shape)).float()


def sample_seed(seed: int, objective: Objective, setting: Setting) -> int:
    """A sample's own seed, from what it optimizes: its result does not depend on its batch."""
    digest = hashlib.sha256(f"{seed}|{objective!r}|{setting.kappa!r}|{setting.gamma!r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
