"""From raw optimized inputs to 8-bit RGB frames, the way the paper displays them.

Values are min-max scaled over the whole sequence, never per frame, so that slow and
fast motion stay comparable within one clip (paper, section 3.5). Optical flow is
shown as RGB = (horizontal, vertical, magnitude), each component scaled on its own:
red means rightward, green downward, blue a large flow vector.
"""

from __future__ import annotations

import numpy as np

from kinetoscope import motion
from kinetoscope.common import APPEARANCE_KINDS, MOTION_KINDS, LayoutError, to_canonical

from .result import ResultError


def minmax_to_uint8(values: np.ndarray) -> np.ndarray:
    """Maps the array's minimum to 0 and its maximum to 255, over every element at once.

    A constant array has no range to stretch; it shows its sign instead
    (positive 255, zero 128, negative 0), so a uniform rightward field still reads as red.
    """
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if values.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12 * max(1.0, abs(high), abs(low)):
        level = 255 if low > 0 else 0 if low < 0 else 128
        return np.full(values.shape, level, dtype=np.uint8)
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def flow_fields(sample: np.ndarray, kind: str) -> np.ndarray:
    """Splits a canonical flow sample into fields [L, 2, H, W] of (horizontal, vertical).

    The layouts are defined once, in `kinetoscope.motion.flow_fields`; this keeps the
    display's error type.
    """
    try:
        return motion.flow_fields(sample, kind)
    except motion.MotionError as exc:
        raise ResultError(str(exc)) from None


def flow_to_rgb(fields: np.ndarray) -> np.ndarray:
    """Flow fields [L, 2, H, W] to frames [L, H, W, 3]: R horizontal, G vertical, B magnitude."""
    horizontal, vertical = fields[:, 0].astype(np.float64), fields[:, 1].astype(np.float64)
    magnitude = np.hypot(horizontal, vertical)
    return np.stack([minmax_to_uint8(horizontal), minmax_to_uint8(vertical), minmax_to_uint8(magnitude)], axis=-1)


def appearance_to_rgb(sample: np.ndarray) -> np.ndarray:
    """An image [C,H,W] or video [C,T,H,W] to frames [T,H,W,3], one range for all channels and frames."""
    frames = sample[:, None] if sample.ndim == 3 else sample
    if frames.shape[0] == 1:
        frames = np.repeat(frames, 3, axis=0)
    if frames.shape[0] != 3:
        raise ResultError(f"appearance needs 1 or 3 channels, got {frames.shape[0]}")
    return np.ascontiguousarray(np.transpose(minmax_to_uint8(frames), (1, 2, 3, 0)))


def display_frames(sample: np.ndarray, kind: str, layout: str | None = None) -> np.ndarray:
    """One input sample (no batch axis) in its own layout (with or without N) to uint8 frames [T, H, W, 3].

    An image gives one frame; stacked flow gives L frames; videos give T frames.
    """
    sample = np.asarray(sample)
    if layout is not None:
        try:
            sample = to_canonical(sample, layout)
        except LayoutError as exc:
            raise ResultError(str(exc)) from None
    if kind in MOTION_KINDS:
        return flow_to_rgb(flow_fields(sample, kind))
    if kind in APPEARANCE_KINDS:
        expected = 3 if kind == "image" else 4
        if sample.ndim != expected:
            raise ResultError(f"a {kind} sample must have {expected} axes, got shape {sample.shape}")
        return appearance_to_rgb(sample)
    raise ResultError(f"unknown input kind {kind!r}")
