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
from typing import Callable, NamedTuple

import torch

from .geometry import canonical_view
from .native import NativeUpdate
from .regularizers import local_energy_gradient, project, total_variation_gradient
from .transforms import roll_plane

_LOGGER = logging.getLogger(__name__)
RECOMPILE_LIMIT = 64
"""Compiled variants kept per kernel: one per input shape (batch size included). Past dynamo's
default of 8, a server that saw many models would quietly run eagerly."""


def update_input(
    x: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
    shifts: torch.Tensor | None, kappa: torch.Tensor, gamma: torch.Tensor, keep: torch.Tensor,
    step_size: torch.Tensor, bias2_sqrt: torch.Tensor,
    layout: str, kind: str | None, h_axis: int,
    alpha: float, bound: float, lambda_b: float, lambda_tv: float, beta1: float, beta2: float, eps: float,
) -> torch.Tensor:
    """Step x (model layout) into `out`, and Adam's moments (canonical [B, K, D, H, W]) in place.

    `out` is another buffer shaped like x (the native loop in `native.py` needs the old
    values for R_TV while it writes; both paths share the protocol). `grad` is the
    network's gradient w.r.t. the jittered input; the shifts are undone here. Returns the
    [B] penalty λ_B R_B + λ_TV R_TV at x before the step. Samples whose `keep` is False
    are copied as they are. The Adam update is torch.optim.Adam's
    (no weight decay, no amsgrad); `step_size` = lr / (1 − β1^t), `bias2_sqrt` = √(1 − β2^t),
    passed as tensors so that a new step does not mean a new compiled graph.
    """
    if shifts is not None:
        grad = roll_plane(grad, -shifts, h_axis)
    view = canonical_view(x, layout, kind)
    energy_grad = local_energy_gradient(view, alpha)
    variation_grad = total_variation_gradient(view, kappa, gamma)
    # R_B is homogeneous of degree α and R_TV of degree 2, so (Euler) x·∇R_B = α R_B and
    # x·∇R_TV = 2 R_TV: the penalty is one reduction over the gradients' own shape, which
    # the compiler fuses into the pass that needs them anyway, instead of four reductions
    # over differently shaped differences, each its own loop.
    penalty = (view * (lambda_b / alpha * energy_grad + lambda_tv / 2.0 * variation_grad)).flatten(1).sum(1)
    total = canonical_view(grad, layout, kind).nan_to_num(0.0, 0.0, 0.0)
    total = total + lambda_b * energy_grad + lambda_tv * variation_grad
    avg = exp_avg * beta1 + total * (1 - beta1)
    avg_sq = exp_avg_sq * beta2 + total.square() * (1 - beta2)
    stepped = view - step_size * avg / (avg_sq.sqrt() / bias2_sqrt + eps)
    stepped = project(stepped, bound)
    keep5 = keep.reshape(-1, 1, 1, 1, 1)
    canonical_view(out, layout, kind).copy_(torch.where(keep5, stepped, view))
    exp_avg.copy_(torch.where(keep5, avg, exp_avg))
    exp_avg_sq.copy_(torch.where(keep5, avg_sq, exp_avg_sq))
    return penalty


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


def update_inputs(
    states: list[InputState], constants: list[tuple], alive: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor,
    bias2_sqrt: torch.Tensor, betas: tuple[float, float], eps: float,
) -> torch.Tensor:
    """`update_input` for every input of a step, as one call: the sum of their [B] penalties.

    One call per step instead of one per input halves what the compiled path costs in
    Python (a guard check and a wrapper per call), which on a small network is a
    measurable share of the step. `constants[i]` = (layout, kind, h_axis, alpha, bound,
    λ_B, λ_TV) of input i."""
    penalty = torch.zeros_like(kappa)
    for state, (layout, kind, h_axis, alpha, bound, lambda_b, lambda_tv) in zip(states, constants):
        penalty = penalty + update_input(
            state.x, state.out, state.grad, state.exp_avg, state.exp_avg_sq, state.shifts, kappa, gamma, alive & state.active,
            state.step_size, bias2_sqrt, layout, kind, h_axis, alpha, bound, lambda_b, lambda_tv, betas[0], betas[1], eps,
        )
    return penalty


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
