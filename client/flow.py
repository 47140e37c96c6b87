"""Dense optical flow for decoded videos, in the convention of kinetoscope's motion inputs.

Flow fields are `[T − 1, 2, H, W]` float32 in pixels/frame: channel 0 is horizontal
(positive = rightwards), channel 1 vertical (positive = downwards), field t maps frame
t to frame t + 1. They are estimated on grayscale frames, as two-stream networks were
trained (a shape whose grey level matches its background is therefore hard to track).

Two estimators, best first:

* `tvl1`: OpenCV's Dual TV-L1 (`cv2.optflow`, only in the opencv-contrib builds), the
  estimator two-stream networks were trained with;
* `dis`: OpenCV's Dense Inverse Search, in every OpenCV build; close to TV-L1 on
  rigid motion and much faster.

`flow_method()` says which one this installation uses. Small frames are upsampled
before estimation (patch-based estimators need a few patches per object) and the
flow is brought back to the frame size, so a 32-pixel clip still gets usable flow.

cv2 is imported inside the functions so that importing `kinetoscope.client` stays light.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

FLOW_METHODS = ("tvl1", "dis")
MIN_SIDE = 96
"""Frames whose short side is smaller are upsampled (by a whole factor) to at least this."""


@lru_cache(maxsize=1)
def flow_method() -> str:
    """The estimator `optical_flow` uses: "tvl1" where OpenCV has contrib TV-L1, otherwise "dis"."""
    import cv2

    optflow = getattr(cv2, "optflow", None)
    return "tvl1" if hasattr(optflow, "DualTVL1OpticalFlow_create") else "dis"


def optical_flow(frames: np.ndarray, *, method: str | None = None, min_side: int = MIN_SIDE) -> np.ndarray:
    """`[T, H, W, 3]` uint8 RGB frames → `[T − 1, 2, H, W]` float32 flow in pixels/frame."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"optical_flow needs RGB frames [T, H, W, 3], got shape {frames.shape}")
    count, height, width, _ = frames.shape
    if count < 2:
        return np.zeros((0, 2, height, width), dtype=np.float32)
    method = method or flow_method()
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")
    if method == "tvl1" and flow_method() != "tvl1":
        raise ValueError("TV-L1 flow needs an OpenCV build with cv2.optflow (opencv-contrib); use method='dis'")
    factor = max(1, math.ceil(min_side / min(height, width)))
    gray = [_upsample(_grayscale(frame), factor) for frame in frames]
    estimator = _estimator(method)
    fields = [_downsample(estimator.calc(a, b, None), factor, (height, width)) for a, b in zip(gray[:-1], gray[1:])]
    return np.stack(fields).transpose(0, 3, 1, 2).astype(np.float32, copy=False)


def _grayscale(frame: np.ndarray) -> np.ndarray:
    """Luma of one RGB frame, the single channel both estimators work on."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def _upsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarges small frames so that a small moving object still spans several patches."""
    import cv2

    if factor == 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def _downsample(field: np.ndarray, factor: int, size: tuple[int, int]) -> np.ndarray:
    """`[h, w, 2]` flow of the upsampled frames → the frame size, vectors divided by the factor."""
    import cv2

    if factor == 1:
        return field
    height, width = size
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_AREA) / factor


def _estimator(method: str):
    """A fresh OpenCV dense-flow object (they keep state between calls, so never share one)."""
    import cv2

    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    preset = getattr(cv2, "DISOpticalFlow_PRESET_MEDIUM", None)
    if preset is None:
        preset = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(0)  # full resolution: the inputs are already small
    dis.setPatchStride(2)  # denser patches: small shapes move coherently
    return dis
