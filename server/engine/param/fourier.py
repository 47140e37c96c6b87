"""A spatiotemporal Fourier parameterization: Lucid's `fft_image`, over H, W and time.

The raw variable is the spectrum of the canonical view [B, K, D, H, W] over K (frames or
flow fields), H and W, each coefficient scaled by 1/frequency (Lucid's decay power 1), so
that Adam's equal steps on every coefficient move coarse, slow patterns more than fine,
fast ones: a preconditioner for the low-frequency inputs natural images and motion have.
The scale is normalized to unit RMS, which keeps the learning rate's meaning (a fraction of
B per step) comparable to pixels'. RGB inputs (three channels per position) are
parameterized in decorrelated colour, as in Lucid's `to_valid_rgb`. The values are the
inverse transform times B, projected onto the B-ball: the constraint is part of the map.
"""

from __future__ import annotations

import torch

from kinetoscope.common import APPEARANCE_KINDS
from kinetoscope.server.importer import InputSpec

from ..geometry import canonical, canonical_view
from ..regularizers import project
from .base import Parameterization

COLOUR_CORRELATION_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))
"""Lucid's colour_correlation_svd_sqrt: natural images' RGB covariance, square-rooted."""


def spectrum_scale(frames: int, height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """[K, H, W//2+1] weights 1/max(|f|, 1/max(K, H, W))^decay of the rfft coefficients, unit RMS."""
    fk = torch.fft.fftfreq(frames, dtype=torch.float64).reshape(-1, 1, 1)
    fh = torch.fft.fftfreq(height, dtype=torch.float64).reshape(1, -1, 1)
    fw = torch.fft.rfftfreq(width, dtype=torch.float64).reshape(1, 1, -1)
    frequency = (fk.square() + fh.square() + fw.square()).sqrt()
    scale = frequency.clamp_min(1.0 / max(frames, height, width)).pow(-decay_power)
    return (scale / scale.square().mean().sqrt()).float()


def colour_matrix() -> torch.Tensor:
    """Lucid's decorrelation matrix, divided by its largest column norm."""
    matrix = torch.tensor(COLOUR_CORRELATION_SQRT, dtype=torch.float64)
    return (matrix / matrix.norm(dim=0).max()).float()


class FourierParam(Parameterization):
    name = "fourier"

    def __init__(self, spec: InputSpec, start: torch.Tensor, bound: float) -> None:
        super().__init__(spec, bound)
        self.shape = tuple(start.shape)
        view = canonical(start, spec)
        _, frames, depth, height, width = view.shape
        self.dims = (frames, height, width)
        self.scale = spectrum_scale(*self.dims).to(start.device)[:, None]  # [K, 1, H, W//2+1]: broadcast over D
        self.colour = colour_matrix().to(start.device) if spec.kind in APPEARANCE_KINDS and depth == 3 else None
        # the start image itself, as a spectrum: both parameterizations begin at the same input
        pixels = view / bound
        if self.colour is not None:
            pixels = torch.einsum("ij,bkjhw->bkihw", torch.linalg.inv(self.colour), pixels)
        spectrum = torch.fft.rfftn(pixels, dim=(1, 3, 4), norm="ortho") / self.scale
        self.raw = torch.view_as_real(spectrum).contiguous()
        self.exp_avg = torch.zeros_like(self.raw)
        self.exp_avg_sq = torch.zeros_like(self.raw)
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None
        self._values = self._image(self.raw).detach()

    def _image(self, raw: torch.Tensor) -> torch.Tensor:
        """Values in model layout from a raw spectrum (differentiable)."""
        spectrum = torch.view_as_complex(raw) * self.scale
        pixels = torch.fft.irfftn(spectrum, s=self.dims, dim=(1, 3, 4), norm="ortho")
        if self.colour is not None:
            pixels = torch.einsum("ij,bkjhw->bkihw", self.colour, pixels)
        view = project(pixels * self.bound, self.bound)
        values = torch.empty(self.shape, device=raw.device)
        canonical_view(values, self.spec.layout, self.spec.kind).copy_(view)
        return values

    @property
    def values(self) -> torch.Tensor:
        return self._values

    def graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._graph is None:
            raw = self.raw.detach().requires_grad_(True)
            with torch.enable_grad():
                self._graph = (raw, self._image(raw))
        return self._graph

    def set_raw(self, raw: torch.Tensor) -> None:
        self.raw = raw.detach()
        self._graph = None

    def advance(self) -> None:
        if self._graph is None:  # stepped: the next values, with the graph the next update pulls back through
            raw, values = self.graph()
            self._values = values.detach()
