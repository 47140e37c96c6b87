"""The optimized motion of a unit and how it changes across settings (paper, section 4.2.1).

Units keep their preferred direction of motion while the temporal regularizer γ changes
their preferred speed. These numbers make that visible for any flow input, whatever its
layout: `flow_fields` reads optical flow as fields [..., F, 2, H, W] (horizontal,
vertical), `motion_across_settings` measures magnitude, direction and coherence per
setting and how consistent the direction and how changed the speed are across them.
Numpy only, so client and server both use it; docs/ANALYSIS.md ("Motion across γ")
defines every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kinetoscope.common import MOTION_KINDS, InputKind, LayoutError, sample_layout


class MotionError(ValueError):
    """Flow that cannot be read as fields, or fields of the wrong shape; the message says what is wrong."""


def flow_fields(array: np.ndarray, kind: str, layout: str | None = None) -> np.ndarray:
    """Flow samples [..., *sample] to fields [..., F, 2, H, W] of (horizontal, vertical).

    `layout` spells the sample's axes (CHW, HWC, CTHW, THWC or another order, with or without
    the batch axis N; default CHW, CTHW for flow_video); leading axes (units, settings) are kept. stacked_flow is
    interleaved x1,y1,x2,y2,... (the two-stream convention); stacked_flow_planar is
    x1..xL then y1..yL; flow_video is [2, T, H, W]. Returns a view where it can.
    """
    array = np.asarray(array)
    if kind not in MOTION_KINDS:
        raise MotionError(f"{kind!r} is not a flow kind; expected one of {', '.join(sorted(MOTION_KINDS))}")
    canonical = InputKind(kind).sample_axes
    try:
        letters = sample_layout(layout or canonical)
    except LayoutError:
        letters = None
    if letters is None or sorted(letters) != sorted(canonical):
        raise MotionError(f"a {kind} sample's layout must order the axes {canonical}, got {layout!r}")
    layout = letters
    lead = array.ndim - len(layout)
    if lead < 0:
        raise MotionError(f"a {kind} sample needs {len(layout)} axes ({layout}), got shape {array.shape}")
    sample = np.transpose(array, [*range(lead), *(lead + layout.index(axis) for axis in canonical)])
    head, (channels, *rest) = sample.shape[:lead], sample.shape[lead:]
    if kind == "flow_video":
        if channels != 2:
            raise MotionError(f"a flow_video sample must be [2,T,H,W], got {tuple(sample.shape[lead:])}")
        return np.moveaxis(sample, lead, lead + 1)
    if channels % 2:
        raise MotionError(f"a {kind} sample must be [2L,H,W] with an even channel count, "
                          f"got {tuple(sample.shape[lead:])}")
    if kind == "stacked_flow":
        return sample.reshape(*head, channels // 2, 2, *rest)
    return np.swapaxes(sample.reshape(*head, 2, channels // 2, *rest), lead, lead + 1)


@dataclass(frozen=True)
class MotionAcrossSettings:
    """Per setting (arrays [S]) and across settings, the optimized motion of one unit.

    Directions are angles in image axes (0 rightward, π/2 downward, as flow's vertical
    component points down); NaN where a setting's flow sums to nothing.
    """

    magnitude: np.ndarray  # RMS flow-vector length over pixels and fields, in the input's units
    direction: np.ndarray  # radians, the angle of the summed flow vector
    coherence: np.ndarray  # |Σv| / Σ|v|: 1 for uniform motion, 0 for motion that cancels out
    consistency: float  # |Σ_s c_s u_s| / Σ_s c_s: 1 when every setting moves the same way; NaN if no setting moves
    speed_ratio: float  # magnitude at the largest γ / at the smallest; NaN without two γ or with no motion at the smallest
    gammas: tuple[float, ...] = ()  # the settings' γ when given

    @property
    def settings(self) -> int:
        return len(self.magnitude)


def motion_across_settings(fields: np.ndarray, gammas: Sequence[float] | None = None) -> MotionAcrossSettings:
    """Measures fields [S, F, 2, H, W] (one unit's optimized flow per setting; see `flow_fields`).

    Without `gammas` the settings are taken in order of increasing γ (the speed ratio is
    last over first); with them, the ratio compares the largest γ with the smallest.
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 5 or fields.shape[2] != 2:
        raise MotionError(f"fields must be [settings, fields, 2, H, W], got shape {fields.shape}")
    count = fields.shape[0]
    if gammas is not None and len(gammas) != count:
        raise MotionError(f"{len(gammas)} γ given for {count} settings")
    vectors = np.moveaxis(fields, 2, -1).reshape(count, -1, 2)  # [S, pixels·fields, (dx, dy)]
    lengths = np.hypot(vectors[..., 0], vectors[..., 1])
    magnitude = np.sqrt(np.mean(lengths**2, axis=1)) if vectors.shape[1] else np.zeros(count)
    total = vectors.sum(axis=1)  # [S, 2]
    net, travelled = np.hypot(total[:, 0], total[:, 1]), lengths.sum(axis=1)
    moving = (travelled > 0) & (net > 1e-12 * travelled)
    coherence = np.where(moving, net / np.where(travelled > 0, travelled, 1.0), 0.0)
    direction = np.where(moving, np.arctan2(total[:, 1], total[:, 0]), np.nan)
    # c_s · u_s = Σv_s / Σ|v_s|: each setting's summed flow per unit of travelled flow.
    weighted = np.where(moving[:, None], total / np.where(travelled > 0, travelled, 1.0)[:, None], 0.0)
    weight = float(coherence.sum())
    consistency = min(1.0, float(np.hypot(*weighted.sum(axis=0)) / weight)) if weight > 0 else math.nan
    order = np.asarray(gammas, dtype=np.float64) if gammas is not None else np.arange(count, dtype=np.float64)
    speed_ratio = math.nan
    if count >= 2 and order.max() > order.min():
        low, high = int(np.argmin(order)), int(np.argmax(order))
        if magnitude[low] > 0:
            speed_ratio = float(magnitude[high] / magnitude[low])
    return MotionAcrossSettings(magnitude, direction, coherence, consistency, speed_ratio,
                                tuple(float(g) for g in gammas) if gammas is not None else ())


__all__ = ["MotionAcrossSettings", "MotionError", "flow_fields", "motion_across_settings"]
