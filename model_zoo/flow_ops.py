"""Optical-flow layout conversions shared by the synthetic data and the visualizations.

Flow fields are `[L, 2, H, W]` in pixels/frame: channel 0 is horizontal (positive =
rightwards), channel 1 vertical (positive = downwards). A two-stream network takes
them stacked as `[2L, H, W]` interleaved x1, y1, x2, y2, … and multiplied by
`flow_scale`, then clipped to the input range -128..127.
"""

from __future__ import annotations

import numpy as np

from kinetoscope.common import DEFAULT_RANGE
from kinetoscope.motion import flow_fields

INPUT_RANGE = DEFAULT_RANGE
"""The zoo's models take every input in the default range."""


def stack_flow(fields: np.ndarray) -> np.ndarray:
    """`[..., L, 2, H, W]` → `[..., 2L, H, W]` interleaved x1, y1, x2, y2, … (the stacked_flow kind)."""
    *lead, count, two, height, width = fields.shape
    if two != 2:
        raise ValueError(f"flow fields need 2 components on axis -3, got shape {fields.shape}")
    return fields.reshape(*lead, 2 * count, height, width)


def unstack_flow(stacked: np.ndarray) -> np.ndarray:
    """`[..., 2L, H, W]` interleaved → `[..., L, 2, H, W]`, the inverse of `stack_flow` (see `kinetoscope.motion`)."""
    return flow_fields(stacked, "stacked_flow")


def flow_to_input(fields: np.ndarray, flow_scale: float) -> np.ndarray:
    """Pixels/frame → network input values: ×`flow_scale`, clipped to -128..127, float32."""
    return np.clip(fields * flow_scale, *INPUT_RANGE).astype(np.float32)


def input_to_flow(values: np.ndarray, flow_scale: float) -> np.ndarray:
    """Network input values → pixels/frame, so a maximized flow input reads as a displacement."""
    return (np.asarray(values, dtype=np.float32) / flow_scale).astype(np.float32)


def mean_direction(fields: np.ndarray, moving: np.ndarray | None = None) -> np.ndarray:
    """Mean (dx, dy) over the moving pixels of `[..., 2, H, W]` fields, to compare with a class's direction."""
    dx, dy = np.moveaxis(fields, -3, 0)
    if moving is None:
        moving = (dx != 0) | (dy != 0)
    count = max(int(moving.sum()), 1)
    return np.array([dx[moving].sum() / count, dy[moving].sum() / count])
