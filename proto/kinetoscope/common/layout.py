"""Where channels, time and space sit in an input, and the channels-first order every reader works in.

A layout spells one letter per axis: N (batch), C, T (time; ONNX 3D convolutions call it
D), H and W, in the input's own order (NCHW, NHWC, NCTHW, NTHWC, …). Readers transpose
one sample to the canonical CHW or CTHW and need not know where the axes were.
"""

from __future__ import annotations

import numpy as np

CANONICAL = ("CHW", "CTHW")
"""The per-sample orders display, flow and decoding code work in: image-like and video-like."""


class LayoutError(ValueError):
    """A layout that does not spell an image or video sample, or does not fit an array; the message says which."""


def sample_layout(layout: str) -> str:
    """One sample's axes: the batch axis N dropped, depth D spelled as time T, upper case."""
    letters = layout.strip().upper().replace("D", "T")
    if letters.startswith("N"):
        letters = letters[1:]
    if sorted(letters) not in (sorted(order) for order in CANONICAL):
        raise LayoutError(f"layout {layout!r} is not one of NCHW, NHWC, NCTHW, NTHWC (or another order of those axes)")
    return letters


def canonical_layout(layout: str) -> str:
    """CHW or CTHW: the canonical order of a sample laid out as `layout`."""
    return CANONICAL[1] if "T" in sample_layout(layout) else CANONICAL[0]


def infer_layout(shape: tuple[int, ...]) -> str:
    """Guesses one sample's layout from its shape: the channel axis is the smaller of the first and last axes."""
    if len(shape) not in (3, 4):
        raise LayoutError(f"an input sample of shape {tuple(shape)} is neither [C,H,W] nor [C,T,H,W]; give its layout")
    channel_first = shape[0] <= shape[-1]
    if len(shape) == 3:
        return "CHW" if channel_first else "HWC"
    return "CTHW" if channel_first else "THWC"


def to_canonical(sample: np.ndarray, layout: str) -> np.ndarray:
    """One sample (no batch axis) laid out as `layout` (with or without N) → CHW or CTHW, as a view."""
    letters = sample_layout(layout)
    if sample.ndim != len(letters):
        raise LayoutError(f"array of shape {sample.shape} does not match layout {letters}")
    return np.transpose(sample, [letters.index(axis) for axis in canonical_layout(letters)])


def from_canonical(sample: np.ndarray, layout: str) -> np.ndarray:
    """The inverse of `to_canonical`: a CHW or CTHW sample in the axis order of `layout`."""
    letters = sample_layout(layout)
    source = canonical_layout(letters)
    if sample.ndim != len(source):
        raise LayoutError(f"array of shape {sample.shape} is not a {source} sample")
    return np.transpose(sample, [source.index(axis) for axis in letters])


def axis_sizes(shape: tuple[int, ...], layout: str) -> dict[str, int]:
    """{letter: size} of a shape laid out as `layout` (N included when the layout has it)."""
    if len(shape) != len(layout):
        raise LayoutError(f"layout {layout!r} does not fit shape {tuple(shape)}")
    return dict(zip(layout, (int(d) for d in shape)))
