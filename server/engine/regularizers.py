"""The paper's regularizers: local energy R_B (eq. 2) and spatiotemporal total variation R_TV (eq. 3).

Both return one value per sample, so samples with different (κ, γ) settings share a
batch. Weights follow section 3.5: λ_B = 1/(HWB^α), λ_TV = 1/(HWV²), V = B/6.5, and
motion inputs get 10× the TV weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kinetoscope.server.importer import InputSpec

from .geometry import canonical, is_motion, spatial_size


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


class LocalEnergy:
    """R_B(x) = Σ_{i,j,k} (Σ_d x²)^{α/2}; the hard bound ‖x(i,j,k)‖ ≤ B is kept by `project`."""

    def __init__(self, spec: InputSpec, weights: RegularizerWeights) -> None:
        self.spec, self.weights = spec, weights

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        energy = canonical(x, self.spec).pow(2).sum(dim=2)
        return energy.clamp_min(1e-12).pow(self.weights.alpha / 2).flatten(1).sum(1) * self.weights.lambda_b

    @torch.no_grad()
    def project(self, x: torch.Tensor) -> None:
        """Scale every pixel whose channel vector is longer than B back onto the B-ball (in place)."""
        view = canonical(x, self.spec)
        norm = view.pow(2).sum(dim=2, keepdim=True).sqrt()
        factor = (self.weights.bound / norm.clamp_min(1e-12)).clamp(max=1.0)
        view.mul_(factor)

    def __repr__(self) -> str:
        return f"LocalEnergy({self.spec.name}, B={self.weights.bound:g}, α={self.weights.alpha:g})"


class TotalVariation:
    """R_TV(x; κ, γ) = Σ κ((∇_x x)² + (∇_y x)²) + γ(∇_t x)², with κ and γ given per sample."""

    def __init__(self, spec: InputSpec, weights: RegularizerWeights) -> None:
        self.spec, self.weights = spec, weights

    def __call__(self, x: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        view = canonical(x, self.spec)
        dx = (view[..., :, 1:] - view[..., :, :-1]).pow(2).flatten(1).sum(1)
        dy = (view[..., 1:, :] - view[..., :-1, :]).pow(2).flatten(1).sum(1)
        spatial = kappa * (dx + dy)
        if view.shape[1] > 1:
            dt = (view[:, 1:] - view[:, :-1]).pow(2).flatten(1).sum(1)
            spatial = spatial + gamma * dt
        return spatial * self.weights.lambda_tv

    def __repr__(self) -> str:
        return f"TotalVariation({self.spec.name}, λ={self.weights.lambda_tv:.3g})"
