"""Adam as torch.optim.Adam steps (no weight decay, no amsgrad), and the run's step-size schedule.

The native loop (`fused_update.c`, `adam_step`) is the same arithmetic in C; both read their
constants from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import MaximizeConfig


@dataclass(frozen=True)
class Adam:
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    @classmethod
    def from_config(cls, config: MaximizeConfig) -> "Adam":
        return cls(config.betas[0], config.betas[1], config.eps)

    def step(self, value: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
             step_size: torch.Tensor, bias2_sqrt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stepped value, new first moment, new second moment); nothing is written in place.

        `step_size` = lr_t / (1 − β1^t) and `bias2_sqrt` = √(1 − β2^t) (see `AdamSchedule`), passed as
        tensors so that a new step does not mean a new compiled graph."""
        avg = exp_avg * self.beta1 + grad * (1 - self.beta1)
        avg_sq = exp_avg_sq * self.beta2 + grad.square() * (1 - self.beta2)
        return value - step_size * avg / (avg_sq.sqrt() / bias2_sqrt + self.eps), avg, avg_sq


@dataclass(frozen=True)
class AdamSchedule:
    """Per step t: Adam's step size lr_t / (1 − β1^t) in the optimized variable's units, and √(1 − β2^t).

    lr_t falls geometrically from `learning_rate` to `final_learning_rate` (fractions of the
    unit: B for the pixel parameterization) over the run."""

    adam: Adam
    step_sizes: tuple[float, ...]
    bias2_sqrt: tuple[float, ...]

    @classmethod
    def for_run(cls, config: MaximizeConfig) -> "AdamSchedule":
        adam, steps = Adam.from_config(config), config.iterations
        decay = (config.final_learning_rate / config.learning_rate) ** (1.0 / max(steps - 1, 1))
        sizes = tuple(config.learning_rate * decay**s / (1 - adam.beta1 ** (s + 1)) for s in range(steps))
        return cls(adam, sizes, tuple(math.sqrt(1 - adam.beta2 ** (s + 1)) for s in range(steps)))

    def scaled(self, unit: float) -> "AdamSchedule":
        """The same schedule with step sizes in units of `unit` (an input's bound B)."""
        return AdamSchedule(self.adam, tuple(size * unit for size in self.step_sizes), self.bias2_sqrt)

    def __len__(self) -> int:
        return len(self.step_sizes)
