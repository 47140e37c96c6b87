"""The paper's regularizers: local energy R_B (eq. 2) and spatiotemporal total variation R_TV (eq. 3).

Both return one value per sample, so samples with different (κ, γ) settings share a
batch. Weights follow section 3.5: λ_B = 1/(HWB^α), λ_TV = 1/(HWV²), V = B/6.5, and
motion inputs get 10× the TV weight.

Their backward passes are written out by hand. Autograd carries every slice of R_TV
back through a zero-filled buffer of the whole input, every power through a copy and
every sum into a fresh buffer; on large inputs these passes over memory cost more than
the network's first layers. The hand-written passes do the same arithmetic and add the
same terms in the same order (results are bit for bit those of autograd) in about half
the passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

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


class Term(Protocol):
    """A per-sample penalty with its own backward pass."""

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """[B] values, and what `gradient` needs."""

    def gradient(self, grad_out: torch.Tensor, x: torch.Tensor, saved: Any) -> torch.Tensor:
        """d(Σ grad_out · value)/dx, contiguous and shaped like x."""


class _Penalty(torch.autograd.Function):
    """The sum of per-sample terms; backward adds the terms' gradients (two terms: order-free)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, terms: Sequence[Term]) -> torch.Tensor:
        total, saved = None, []
        for term in terms:
            value, state = term.evaluate(x)
            saved.append(state)
            total = value if total is None else total + value
        ctx.save_for_backward(x)
        ctx.terms, ctx.states = terms, saved
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        grad = None
        for term, state in zip(ctx.terms, ctx.states):
            part = term.gradient(grad_out, x, state)
            grad = part if grad is None else part.add_(grad)
        return grad, None


def penalty(x: torch.Tensor, terms: Sequence[Term]) -> torch.Tensor:
    """[B] Σ of the terms' values, differentiable in x."""
    return _Penalty.apply(x, tuple(terms))


def _column(values: torch.Tensor, dims: int) -> torch.Tensor:
    """[B] → [B, 1, …] to scale each sample of a `dims`-dimensional tensor."""
    return values.reshape(-1, *[1] * (dims - 1))


def _canonical_buffer(x: torch.Tensor, spec: InputSpec, zero: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A contiguous tensor shaped like x, and its canonical view to write through."""
    make = torch.zeros if zero else torch.empty
    buffer = make(x.shape, dtype=x.dtype, device=x.device)
    view = canonical(buffer, spec)
    if view.data_ptr() != buffer.data_ptr() and view.numel():
        raise AssertionError(f"input {spec.name!r}: the canonical view of a contiguous tensor is a copy")
    return buffer, view


class LocalEnergy:
    """R_B(x) = Σ_{i,j,k} (Σ_d x²)^{α/2}; the hard bound ‖x(i,j,k)‖ ≤ B is kept by `project`."""

    FLOOR = 1e-12

    def __init__(self, spec: InputSpec, weights: RegularizerWeights) -> None:
        self.spec, self.weights = spec, weights

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return penalty(x, [self])

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        energy = canonical(x, self.spec).pow(2).sum(dim=2)
        clamped = energy.clamp_min(self.FLOOR)
        return clamped.pow(self.weights.alpha / 2).flatten(1).sum(1) * self.weights.lambda_b, (energy, clamped)

    def gradient(self, grad_out: torch.Tensor, x: torch.Tensor, saved: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Autograd's chain: ×λ_B, ×(α/2)·c^{α/2−1}, zero below the floor, ×2x (2 moved onto the smaller factor)."""
        energy, clamped = saved
        exponent = self.weights.alpha / 2
        per_sample = _column(grad_out * self.weights.lambda_b, energy.dim())
        pixel = clamped.pow(exponent - 1).mul_(exponent).mul_(per_sample)
        pixel.masked_fill_(energy.ge(self.FLOOR).logical_not_(), 0.0).mul_(2.0)
        buffer, view = _canonical_buffer(x, self.spec, zero=False)
        torch.mul(pixel.unsqueeze(2), canonical(x, self.spec), out=view)
        return buffer

    @torch.no_grad()
    def project(self, x: torch.Tensor) -> None:
        """Scale every pixel whose channel vector is longer than B back onto the B-ball (in place)."""
        view = canonical(x, self.spec)
        norm = view.pow(2).sum(dim=2, keepdim=True).sqrt_()
        # B / norm as torch computes a scalar over a tensor (reciprocal, then ×B), in place
        view.mul_(norm.clamp_min_(1e-12).reciprocal_().mul_(self.weights.bound).clamp_(max=1.0))

    def __repr__(self) -> str:
        return f"LocalEnergy({self.spec.name}, B={self.weights.bound:g}, α={self.weights.alpha:g})"


class TotalVariation:
    """R_TV(x; κ, γ) = Σ κ((∇_x x)² + (∇_y x)²) + γ(∇_t x)², with κ and γ given per sample."""

    def __init__(self, spec: InputSpec, weights: RegularizerWeights) -> None:
        self.spec, self.weights = spec, weights

    def __call__(self, x: torch.Tensor, kappa: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        return penalty(x, [self.term(kappa, gamma)])

    def term(self, kappa: torch.Tensor, gamma: torch.Tensor) -> "_WeightedVariation":
        return _WeightedVariation(self, kappa, gamma)

    def __repr__(self) -> str:
        return f"TotalVariation({self.spec.name}, λ={self.weights.lambda_tv:.3g})"


@dataclass(frozen=True, eq=False)
class _WeightedVariation:
    """R_TV with one sample's (κ, γ) each."""

    tv: TotalVariation
    kappa: torch.Tensor
    gamma: torch.Tensor

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        view = canonical(x, self.tv.spec)
        dx = _steps(view, view.dim() - 1)
        dy = _steps(view, view.dim() - 2)
        spatial = self.kappa * (_squares(dx) + _squares(dy))
        steps = [(view.dim() - 1, dx), (view.dim() - 2, dy)]
        if view.shape[1] > 1:
            dt = _steps(view, 1)
            spatial = spatial + self.gamma * _squares(dt)
            steps.append((1, dt))
        return spatial * self.tv.weights.lambda_tv, steps

    def gradient(self, grad_out: torch.Tensor, x: torch.Tensor, steps: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        """Each step d = v[i+1] − v[i] with weight w gives G = w·2d: −G at i, then +G at i+1.

        Steps are added last-made first (t, y, x), lower slice before upper, as autograd
        accumulates them; 2d·w is formed as d·2w, the same product rounded once.
        """
        scaled = grad_out * self.tv.weights.lambda_tv
        spatial = scaled * self.kappa
        buffer, target = _canonical_buffer(x, self.tv.spec, zero=True)
        for axis, step in reversed(steps):
            weight = scaled * self.gamma if axis == 1 else spatial
            change = step * _column(2.0 * weight, step.dim())
            length = step.shape[axis]
            target.narrow(axis, 0, length).sub_(change)
            target.narrow(axis, 1, length).add_(change)
        return buffer


def _steps(view: torch.Tensor, axis: int) -> torch.Tensor:
    length = view.shape[axis] - 1
    return view.narrow(axis, 1, length) - view.narrow(axis, 0, length)


def _squares(step: torch.Tensor) -> torch.Tensor:
    return step.pow(2).flatten(1).sum(1)
