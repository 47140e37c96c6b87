"""The paper's regularizers: local energy R_B (eq. 2) and spatiotemporal total variation R_TV (eq. 3).

Each is a pure function of a canonical view [B, K, D, H, W] that returns the per-sample
values and the gradient, written out: the optimizer loop adds these gradients to the
network's in one fused pass over memory (`step.py`) instead of running autograd over a
dozen slices. Values are per sample, so samples with different (κ, γ) share a batch.
Weights follow section 3.5: λ_B = 1/(HWB^α), λ_TV = 1/(HWV²), V = B/6.5, and motion
inputs get 10× the TV weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kinetoscope.server.importer import InputSpec

from .geometry import is_motion, spatial_size

ENERGY_FLOOR = 1e-12
"""Pixels with Σ_d x² below this get no R_B gradient (the power has no derivative at 0 for α < 2)."""


@dataclass(frozen=True)
class RegularizerWeights:
    bound: float
    """B: the largest allowed norm of one pixel's channel vector."""
    alpha: float
    lambda_b: float
    lambda_tv: float

    @classmethod
    def for_input(cls, spec: InputSpec, *, alpha: float = 3.0, bound: float | None = None,
                  v_ratio: float = 6.5, motion_tv_factor: float = 10.0) -> "RegularizerWeights":
        b = spec.norm_bound if bound is None else bound
        h, w = spatial_size(spec)
        v = b / v_ratio
        lambda_tv = 1.0 / (h * w * v * v) * (motion_tv_factor if is_motion(spec) else 1.0)
        return cls(bound=b, alpha=alpha, lambda_b=1.0 / (h * w * b**alpha), lambda_tv=lambda_tv)


def local_energy(view: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """R_B = Σ_{i,j,k} (Σ_d x²)^{α/2} per sample, and its gradient."""
    energy = view.square().sum(dim=2, keepdim=True).clamp_min(ENERGY_FLOOR)
    return energy.pow(alpha / 2).flatten(1).sum(1), local_energy_gradient(view, alpha)


def local_energy_gradient(view: torch.Tensor, alpha: float) -> torch.Tensor:
    """∇R_B = α (Σ_d x²)^{α/2−1} x alone: all the optimizer step needs, as it reads the
    value off the gradient (R_B is homogeneous of degree α; `step.py`)."""
    energy = view.square().sum(dim=2, keepdim=True)
    clamped = energy.clamp_min(ENERGY_FLOOR)
    if alpha == 3.0:  # the paper's α: a square root instead of a fractional power (an exp and a log)
        slope = clamped.sqrt() * 3.0
    else:
        slope = clamped.pow(alpha / 2 - 1) * alpha
    return torch.where(energy >= ENERGY_FLOOR, slope, 0.0) * view


def total_variation(view: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R_TV = Σ κ((∇_x x)² + (∇_y x)²) + γ(∇_t x)² per sample (κ, γ: [B]), and its gradient.

    t is K (frames, flow fields); a single frame has none.
    """
    value = kappa * (_sum_squares(view.diff(dim=-1)) + _sum_squares(view.diff(dim=-2)))
    if view.shape[1] > 1:
        value = value + gamma * _sum_squares(view.diff(dim=1))
    return value, total_variation_gradient(view, kappa, gamma)


def total_variation_gradient(view: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """∇R_TV alone (the optimizer step reads the value off it: R_TV is homogeneous of degree 2).

    With forward differences d_i = x_{i+1} − x_i, ∂/∂x_i Σ d² = 2(d_{i−1} − d_i), d
    taken as 0 outside the grid: each axis's gradient is its differences padded on
    either side and subtracted.
    """
    kappa5, gamma5 = kappa.reshape(-1, 1, 1, 1, 1), gamma.reshape(-1, 1, 1, 1, 1)
    dx = view[..., 1:] - view[..., :-1]
    dy = view[..., 1:, :] - view[..., :-1, :]
    grad = kappa5 * (F.pad(dx, (1, 0)) - F.pad(dx, (0, 1)) + F.pad(dy, (0, 0, 1, 0)) - F.pad(dy, (0, 0, 0, 1)))
    if view.shape[1] > 1:
        dt = view[:, 1:] - view[:, :-1]
        grad = grad + gamma5 * (F.pad(dt, (0, 0, 0, 0, 0, 0, 1, 0)) - F.pad(dt, (0, 0, 0, 0, 0, 0, 0, 1)))
    return 2.0 * grad


def regularized_gradient(view: torch.Tensor, grad: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor,
                         weights: RegularizerWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss's gradient w.r.t. the canonical view, the [B] penalty λ_B R_B + λ_TV R_TV at it).

    `grad` is the network's gradient (canonical, jitter undone); its non-finite entries count as 0.
    A new regularizer adds its weight to `RegularizerWeights`, its gradient function here, and
    one term to each sum (and the same in `fused_update.c`)."""
    energy_grad = local_energy_gradient(view, weights.alpha)
    variation_grad = total_variation_gradient(view, kappa, gamma)
    # R_B is homogeneous of degree α and R_TV of degree 2, so (Euler) x·∇R_B = α R_B and
    # x·∇R_TV = 2 R_TV: the penalty is one reduction over the gradients' own shape, which
    # the compiler fuses into the pass that needs them anyway, instead of four reductions
    # over differently shaped differences, each its own loop.
    penalty = (view * (weights.lambda_b / weights.alpha * energy_grad + weights.lambda_tv / 2.0 * variation_grad)).flatten(1).sum(1)
    total = grad.nan_to_num(0.0, 0.0, 0.0) + weights.lambda_b * energy_grad + weights.lambda_tv * variation_grad
    return total, penalty


def project(view: torch.Tensor, bound: float) -> torch.Tensor:
    """Every pixel's channel vector scaled back onto the B-ball where it is longer than B."""
    norm = view.square().sum(dim=2, keepdim=True).sqrt().clamp_min(1e-12)
    return view * (bound / norm).clamp(max=1.0)


def _sum_squares(step: torch.Tensor) -> torch.Tensor:
    return step.square().flatten(1).sum(1)
