"""A canonical view of any input as [B, K, D, H, W]: K time steps (flow fields, frames), D channels.

The regularizers of the paper are defined over spatiotemporal positions (i, j, k) and
channels d; each input kind stores those axes differently (stacked flow interleaves
x1,y1,x2,y2 in the channel axis; video has its own time axis; tf2onnx inputs are
channel-last). One view function keeps the regularizers kind-agnostic.
"""

from __future__ import annotations

import torch

from kinetoscope.common import MOTION_KINDS
from kinetoscope.server.importer import InputSpec


def canonical(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """[B, *input shape] → [B, K, D, H, W] (a view or permutation, differentiable)."""
    return canonical_view(x, spec.layout, spec.kind, spec.name)


def canonical_view(x: torch.Tensor, layout: str, kind: str | None, name: str = "") -> torch.Tensor:
    """`canonical` from the input's layout and kind alone (plain values a compiler can specialize on)."""
    if layout in ("NHWC", "NTHWC"):
        x = x.movedim(-1, 1)
        layout = "NCHW" if layout == "NHWC" else "NCTHW"
    if layout == "NCHW":
        b, c, h, w = x.shape
        if kind == "stacked_flow":
            return x.reshape(b, c // 2, 2, h, w)
        if kind == "stacked_flow_planar":
            return x.reshape(b, 2, c // 2, h, w).transpose(1, 2)
        return x.reshape(b, 1, c, h, w)
    if layout == "NCTHW":
        return x.transpose(1, 2)
    raise ValueError(f"input {name!r}: layout {layout!r} is not an image or video layout")


def is_motion(spec: InputSpec) -> bool:
    return spec.kind in MOTION_KINDS


def spatial_size(spec: InputSpec) -> tuple[int, int]:
    layout = spec.layout
    h = spec.shape[layout.index("H")]
    w = spec.shape[layout.index("W")]
    return h, w
