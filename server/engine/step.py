"""One optimizer update of one input, fused: the network's gradient, the regularizers', Adam, the projection.

Around the network's forward and backward, every step passes over each input a dozen
times: undo the jitter on the gradient, the R_B and R_TV gradients, Adam's moments, the
projection onto the B-ball, freezing samples that stopped. Op by op these passes cost
more than a small network's own forward and backward. On the CPU the native loop
(`native.py`) does them in one pass; this torch version is the reference it is tested
against, and the path for GPUs, channel-last inputs and machines without a C compiler,
compiled with torch.compile where asked (inductor's C++ or Triton backend) or run eagerly.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch

from .geometry import canonical_view
from .native import NativeUpdate
from .optim.adam import Adam
from .regularizers import RegularizerWeights, project, regularized_gradient
from .transforms import roll_plane

if TYPE_CHECKING:
    from .param import Parameterization

_LOGGER = logging.getLogger(__name__)
RECOMPILE_LIMIT = 64
"""Compiled variants kept per kernel: one per input shape (batch size included). Past dynamo's
default of 8, a server that saw many models would quietly run eagerly."""


class InputState(NamedTuple):
    """One input's tensors for a step: its values, where the stepped values go, the network's
    gradient and Adam's moments."""

    x: torch.Tensor
    out: torch.Tensor
    grad: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    shifts: torch.Tensor | None
    """Per-sample shifts still to undo on `grad` (None: already undone, or never moved)."""
    active: torch.Tensor
    """[B] bool: the samples that read this input."""
    step_size: torch.Tensor
    """Adam's lr_t / (1 − β1^t) in the input's units (`AdamSchedule`)."""


class InputConstants(NamedTuple):
    """What the update needs to know of an input besides its tensors: plain values a compiler specializes on."""

    layout: str
    kind: str | None
    h_axis: int
    """The layout's H axis (W follows it): where per-sample shifts are undone."""
    weights: RegularizerWeights


def update_input(state: InputState, constants: InputConstants, keep: torch.Tensor, kappa: torch.Tensor,
                 gamma: torch.Tensor, bias2_sqrt: torch.Tensor, adam: Adam) -> torch.Tensor:
    """The pixel parameterization's step: x (model layout) into `state.out`, Adam's moments
    (canonical [B, K, D, H, W]) in place, then the projection onto the B-ball.

    `out` is another buffer shaped like x (the native loop in `native.py` needs the old
    values for R_TV while it writes; both paths share the protocol). `grad` is the
    network's gradient w.r.t. the jittered input; the shifts are undone here. Returns the
    [B] penalty λ_B R_B + λ_TV R_TV at x before the step. Samples whose `keep` is False
    are copied as they are.
    """
    layout, kind, h_axis, weights = constants
    grad = state.grad if state.shifts is None else roll_plane(state.grad, -state.shifts, h_axis)
    view = canonical_view(state.x, layout, kind)
    total, penalty = regularized_gradient(view, canonical_view(grad, layout, kind), kappa, gamma, weights)
    stepped, avg, avg_sq = adam.step(view, total, state.exp_avg, state.exp_avg_sq, state.step_size, bias2_sqrt)
    stepped = project(stepped, weights.bound)
    keep5 = keep.reshape(-1, 1, 1, 1, 1)
    canonical_view(state.out, layout, kind).copy_(torch.where(keep5, stepped, view))
    state.exp_avg.copy_(torch.where(keep5, avg, state.exp_avg))
    state.exp_avg_sq.copy_(torch.where(keep5, avg_sq, state.exp_avg_sq))
    return penalty


def update_inputs(states: list[InputState], constants: list[InputConstants], alive: torch.Tensor, kappa: torch.Tensor,
                  gamma: torch.Tensor, bias2_sqrt: torch.Tensor, adam: Adam) -> torch.Tensor:
    """`update_input` for every input of a step, as one call: the sum of their [B] penalties.

    One call per step instead of one per input halves what the compiled path costs in
    Python (a guard check and a wrapper per call), which on a small network is a
    measurable share of the step."""
    penalty = torch.zeros_like(kappa)
    for state, constant in zip(states, constants):
        penalty = penalty + update_input(state, constant, alive & state.active, kappa, gamma, bias2_sqrt, adam)
    return penalty


def update_parameterized(param: "Parameterization", grad: torch.Tensor, shifts: torch.Tensor | None, keep: torch.Tensor,
                         kappa: torch.Tensor, gamma: torch.Tensor, step_size: torch.Tensor, bias2_sqrt: torch.Tensor,
                         constants: InputConstants, adam: Adam) -> torch.Tensor:
    """One step of an input under any parameterization that maps its raw variable to values
    differentiably (`Parameterization.graph`): the same regularized gradient as `update_input`,
    pulled back onto the raw variable, and the same Adam step there. Returns the [B] penalty."""
    layout, kind, h_axis, weights = constants
    if shifts is not None:
        grad = roll_plane(grad, -shifts, h_axis)
    raw, values = param.graph()
    view = canonical_view(values, layout, kind)
    total, penalty = regularized_gradient(view.detach(), canonical_view(grad, layout, kind), kappa, gamma, weights)
    (raw_grad,) = torch.autograd.grad(view, raw, total)
    with torch.no_grad():
        stepped, avg, avg_sq = adam.step(raw, raw_grad, param.exp_avg, param.exp_avg_sq, step_size, bias2_sqrt)
        keep_raw = keep.reshape(-1, *[1] * (raw.dim() - 1))
        param.exp_avg.copy_(torch.where(keep_raw, avg, param.exp_avg))
        param.exp_avg_sq.copy_(torch.where(keep_raw, avg_sq, param.exp_avg_sq))
        param.set_raw(torch.where(keep_raw, stepped, raw))
    return penalty.detach()


def jitter_input(x: torch.Tensor, shifts: torch.Tensor, h_axis: int) -> torch.Tensor:
    """The input the network sees this step: each sample rolled by its shift."""
    return roll_plane(x, shifts, h_axis)


class Kernels:
    """How this run steps its inputs: the native loop where asked and available, otherwise
    `update_inputs` and `jitter_input`, compiled once per process when asked, eager otherwise.

    The first failure to compile (no C++ compiler, an unsupported device) is logged once
    and every later call runs eagerly. Compiled calls are serialized: a compiled
    function is safe to call from several threads, compiling it for a new shape is not.
    """

    _lock = threading.Lock()
    _compiled: dict[str, Callable] = {}
    _broken: str | None = None

    def __init__(self, compiled: bool, native: bool = False) -> None:
        self.compiled = compiled
        self.native = native and NativeUpdate.available()
        """Inputs the native loop supports (`native.supports`) are stepped by it instead."""

    def update(self, *args, **kwargs) -> torch.Tensor:
        return self._call(update_inputs, *args, **kwargs)

    def jitter(self, *args, **kwargs) -> torch.Tensor:
        return self._call(jitter_input, *args, **kwargs)

    @classmethod
    def available(cls) -> bool:
        return cls._broken is None

    def _call(self, function: Callable, *args, **kwargs):
        if not self.compiled or Kernels._broken is not None:
            return function(*args, **kwargs)
        with Kernels._lock:
            compiled = Kernels._compiled.get(function.__name__)
            if compiled is None:
                _allow_recompiles(RECOMPILE_LIMIT)
                # static shapes: a kernel compiled for symbolic sizes loses its vectorized inner loops
                # (measured 4–6× slower on 112×112 inputs); each new shape compiles once instead
                compiled = Kernels._compiled[function.__name__] = torch.compile(function, fullgraph=True, dynamic=False)
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:  # a compiler missing or failing: the eager path does the same work
                Kernels._broken = f"{type(exc).__name__}: {exc}".splitlines()[0]
                _LOGGER.warning("compiling the optimizer step failed (%s); running it eagerly from now on", Kernels._broken)
        return function(*args, **kwargs)


def _allow_recompiles(limit: int) -> None:
    import torch._dynamo.config as dynamo_config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(getattr(dynamo_config, name), limit))
