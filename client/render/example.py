"""Synthetic `result.npz` files with the same keys a maximization writes.

They let rendering be exercised (and shown) without a model or an optimizer: coloured
blobs for appearance, and blobs that move in a known direction for motion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..types import Target, targets_to_text

_CHANNEL_LAST = {"NCHW": "NHWC", "NCTHW": "NTHWC"}


def _blob(size: int, centre_y: float, centre_x: float, radius: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    return np.exp(-((ys - centre_y) ** 2 + (xs - centre_x) ** 2) / (2 * radius**2))


def _appearance(rng: np.random.Generator, size: int, frames: int | None, unit: int) -> np.ndarray:
    """Colour blobs drifting across the frame, in the -128..127 range of mean-subtracted inputs."""
    colours = rng.uniform(-1, 1, size=(3, 3))
    times = range(frames or 1)
    clip = np.zeros((3, len(times), size, size))
    for t in times:
        for blob in range(3):
            centre = (size * (0.3 + 0.2 * blob), size * (0.25 + 0.15 * blob) + t * (1 + unit))
            clip[:, t] += colours[blob][:, None, None] * _blob(size, *centre, size / 8)
    clip = 127 * clip / np.abs(clip).max()
    return clip[:, 0] if frames is None else clip


_DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # right, down, left, up (image coordinates)


def _motion(size: int, fields: int, direction: tuple[int, int], speed: float) -> np.ndarray:
    """Flow fields [L, 2, H, W]: a blob moving at `speed` px per field in `direction` (dx, dy)."""
    dx, dy = direction
    flow = np.zeros((fields, 2, size, size))
    for t in range(fields):
        mask = _blob(size, size / 2 + dy * speed * (t - fields / 2), size / 2 + dx * speed * (t - fields / 2), size / 6)
        flow[t, 0], flow[t, 1] = 20 * dx * mask, 20 * dy * mask
    return flow


def make_example_result(
    path: str | Path,
    *,
    model: str = "two_stream",
    size: int = 32,
    frames: int = 6,
    gammas: Sequence[float] = (10.0, 1.0, 0.0),
    kappas: Sequence[float] | None = None,
    channel_last: bool = False,
    with_class_names: bool = True,
    seed: int = 0,
) -> Path:
    """Writes a result file with three units: a fusion channel, a logit, and an appearance-only channel.

    `model` is "two_stream" (inputs rgb [3,H,W] and flow [2L,H,W] interleaved) or
    "video3d" (one input, video [3,T,H,W]). The appearance-only unit leaves the flow
    input all zeros and marks it as not optimized, as the engine does.
    """
    if model not in ("two_stream", "video3d"):
        raise ValueError(f"model must be 'two_stream' or 'video3d', got {model!r}")
    kappas = tuple(kappas) if kappas is not None else (1.0,) * len(gammas)
    if len(kappas) != len(gammas):
        raise ValueError("gammas and kappas must have the same length")
    rng = np.random.default_rng(seed)
    units = ["Channel('conv5_fusion', 3)", "Logit('logits', 1)", "Channel('rgb/conv3_3', 7)"]
    targets = [(Target("channel", "conv5_fusion", 3),), (Target("logit", "logits", 1),), (Target("channel", "rgb/conv3_3", 7),)]
    n_units, n_settings = len(units), len(gammas)

    if model == "two_stream":
        names, kinds, layouts = ["rgb", "flow"], ["image", "stacked_flow"], ["NCHW", "NCHW"]
        shapes = [(3, size, size), (2 * frames, size, size)]
    else:
        names, kinds, layouts = ["video"], ["video"], ["NCTHW"]
        shapes = [(3, frames, size, size)]
    arrays = {name: np.zeros((n_units, n_settings, *shape), dtype=np.float32) for name, shape in zip(names, shapes)}
    optimized = np.ones((n_units, n_settings, len(names)), dtype=bool)

    for unit in range(n_units):
        for setting, gamma in enumerate(gammas):
            speed = 1.0 + 2.0 / (1.0 + float(gamma))  # less temporal regularization, faster motion
            if model == "two_stream":
                arrays["rgb"][unit, setting] = _appearance(rng, size, None, unit)
                if unit == 2:  # an appearance-stream layer: flow does not feed it
                    optimized[unit, setting, 1] = False
                    continue
                fields = _motion(size, frames, _DIRECTIONS[unit % 4], speed)
                arrays["flow"][unit, setting] = fields.reshape(2 * frames, size, size)
            else:
                arrays["video"][unit, setting] = _appearance(rng, size, frames, unit)

    if channel_last:
        layouts = [_CHANNEL_LAST[layout] for layout in layouts]
        arrays = {name: np.ascontiguousarray(np.moveaxis(array, 2, -1)) for name, array in arrays.items()}

    activation = rng.uniform(5, 50, size=(n_units, n_settings)).astype(np.float32)
    extra: dict[str, np.ndarray] = {}
    if with_class_names:
        extra["class_names"] = np.array(["ApplyEyeMakeup", "Billiards", "PlayingTabla", "YoYo"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path, **arrays, units=np.array(units),
        unit_targets=np.array([targets_to_text(t) for t in targets]), gammas=np.array(gammas, dtype=np.float32),
        kappas=np.array(kappas, dtype=np.float32), activation=activation, input_names=np.array(names),
        input_kinds=np.array(kinds), input_layouts=np.array(layouts), optimized=optimized, **extra,
    )
    return path
