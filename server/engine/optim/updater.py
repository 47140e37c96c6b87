"""The `Updater`: one step of every optimized input of a run, after the network's backward pass.

Two implementations of one interface, chosen once per run (`choose_updater`): the native C
loop (`native.py`; pixel parameterization, float32 CPU inputs with contiguous H×W planes),
and torch (`step.py`; every parameterization and device, compiled where asked).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from .. import native
from ..param import PixelParam
from ..step import InputState, Kernels, update_parameterized
from .adam import AdamSchedule

if TYPE_CHECKING:
    from ..config import MaximizeConfig
    from ..inputs import OptimizedInput


class Updater(ABC):
    """Steps each input's raw variable from the network's gradient w.r.t. the input it was fed:
    regularizer gradients, Adam, the constraint. `step` returns the [B] sum of the inputs'
    penalties λ_B R_B + λ_TV R_TV before the step."""

    def __init__(self, inputs: Sequence["OptimizedInput"], schedule: AdamSchedule, kappa: torch.Tensor,
                 gamma: torch.Tensor, kernels: Kernels) -> None:
        self.inputs, self.schedule, self.kappa, self.gamma, self.kernels = list(inputs), schedule, kappa, gamma, kernels

    @abstractmethod
    def step(self, step: int, grads: Sequence[torch.Tensor | None], alive: torch.Tensor) -> np.ndarray:
        """`grads[i]`: the gradient w.r.t. input i's feed (None where nothing read it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(i.param) for i in self.inputs if i.used)})"


class TorchUpdater(Updater):
    """Pixel inputs through `update_inputs` (compiled once per process where asked), any other
    parameterization through autograd (`update_parameterized`)."""

    def __init__(self, inputs, schedule, kappa, gamma, kernels) -> None:
        super().__init__(inputs, schedule, kappa, gamma, kernels)
        device = kappa.device
        self.bias2_sqrt = torch.tensor(schedule.bias2_sqrt, device=device).unbind()
        self.step_sizes = [torch.tensor(schedule.scaled(unit(i)).step_sizes, dtype=torch.float64).float().to(device).unbind()
                           for i in self.inputs]

    def step(self, step, grads, alive) -> np.ndarray:
        adam, bias2_sqrt = self.schedule.adam, self.bias2_sqrt[step]
        penalty = torch.zeros_like(self.kappa)
        states, constants = [], []
        for i, sizes, grad in zip(self.inputs, self.step_sizes, grads):
            if not i.used or grad is None:
                continue
            grad, shifts = i.unshift(grad, step)
            param = i.param
            if isinstance(param, PixelParam):
                param.stepped = True
                states.append(InputState(param.x, param.spare, grad, param.exp_avg, param.exp_avg_sq, shifts, i.active,
                                         sizes[step]))
                constants.append(i.constants)
            else:
                penalty = penalty + update_parameterized(param, grad, shifts, alive & i.active, self.kappa, self.gamma,
                                                         sizes[step], bias2_sqrt, i.constants, adam)
        if states:
            penalty = penalty + self.kernels.update(states, constants, alive, self.kappa, self.gamma, bias2_sqrt, adam)
        for i in self.inputs:
            i.param.advance()
        return penalty.cpu().numpy()


class NativeUpdater(Updater):
    """Every used input through one `kt_fused_updates` call per step, which also writes the next
    step's shifted inputs (so the network's input costs no separate pass)."""

    def __init__(self, inputs, schedule, kappa, gamma, kernels) -> None:
        super().__init__(inputs, schedule, kappa, gamma, kernels)
        kernels.compiled = False  # torch kernels only shift the first step's input: compiling them would cost seconds for nothing
        self.fused: list[native.FusedUpdate | None] = []
        self.feeds: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        for i in self.inputs:
            param = i.param
            if not i.used:
                self.fused.append(None), self.feeds.append(None)
                continue
            fused = native.FusedUpdate(param.x, param.spare, param.exp_avg, param.exp_avg_sq, i.active, kappa, gamma,
                                       i.spec.layout, i.spec.kind, i.weights, schedule.scaled(unit(i)), i.schedule)
            feeds = (torch.empty_like(param.x), torch.empty_like(param.x)) if i.transform.moves else None
            fused.trust(*(feeds or ()))
            self.fused.append(fused), self.feeds.append(feeds)
        self.group = native.UpdateGroup(len(kappa), len(self.inputs))

    @staticmethod
    def serves(inputs: Sequence["OptimizedInput"]) -> bool:
        return all(isinstance(i.param, PixelParam) and native.supports(i.param.x, i.spec.layout, i.spec.kind)
                   for i in inputs if i.used)

    def step(self, step, grads, alive) -> np.ndarray:
        steps = []
        for i, fused, feeds, grad in zip(self.inputs, self.fused, self.feeds, grads):
            i.prepared = None
            if fused is None or grad is None:  # the objective does not read this input after all: no step
                continue
            param = i.param
            param.stepped = True
            if feeds is not None and step + 1 < len(self.schedule):
                i.prepared = feeds[step % 2]
            steps.append((fused, fused.arguments(param.x, param.spare, grad, i.prepared, alive, step)))
        total = self.group(steps) if steps else np.zeros(len(self.kappa), dtype=np.float32)
        for i in self.inputs:
            i.param.advance()
        return total


def unit(item: "OptimizedInput") -> float:
    """What Adam's step sizes are fractions of: B for pixels; the Fourier spectrum is already in units of B."""
    return item.weights.bound if isinstance(item.param, PixelParam) else 1.0


def choose_updater(config: "MaximizeConfig", device: torch.device, inputs: Sequence["OptimizedInput"],
                   kappa: torch.Tensor, gamma: torch.Tensor) -> Updater:
    """The native loop where the config allows it and it serves every input the run steps, torch otherwise."""
    kernels = Kernels(config.compiles_on(device.type), native=config.native_on(device.type))
    schedule = AdamSchedule.for_run(config)
    kind = NativeUpdater if kernels.native and NativeUpdater.serves(inputs) else TorchUpdater
    return kind(inputs, schedule, kappa, gamma, kernels)
