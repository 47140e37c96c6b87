"""Dense optical flow for decoded videos, in the convention of kinetoscope's motion inputs.

Flow fields are `[T − 1, 2, H, W]` float32 in pixels/frame: channel 0 is horizontal
(positive = rightwards), channel 1 vertical (positive = downwards), field t maps frame
t to frame t + 1, clipped to ±`FLOW_BOUND` = 20 px/frame as two-stream networks' flow
was. They are estimated on grayscale frames, as those networks were trained (a shape
whose grey level matches its background is therefore hard to track).

Two estimators:

* `tvl1` (the default): Dual TV-L1 (Zach, Pock and Bischof 2007), the estimator the
  two-stream networks were trained with, from OpenCV's contrib build (`cv2.optflow`),
  with OpenCV's parameters as the two-stream flow tools use them (`TVL1Settings`).
  It is slow: measured on one core of the development machine (x86-64, OpenCV 5.1),
  about 9 frames/s for 32×32 frames (estimated at 96×96, see below) and 6 frames/s
  for 112×112 frames, so a 10-field stack costs 1–2 s per clip.
* `dis`: Dense Inverse Search, in every OpenCV build, about 20× faster (190 and 140
  frames/s on the same core). On the synthetic clips it is at least as accurate and
  holds where TV-L1 loses the shape at 32×32: a shape of nearly its background's grey,
  or fast motion (3 px/frame, 2√2 diagonally); at 112×112 both follow every class.

Small frames are upsampled (by a whole factor, to a short side of at least `MIN_SIDE`)
before estimation and the flow is brought back to the frame size: patch-based DIS
needs a few patches per object, and TV-L1's smoothness term otherwise wipes out the
motion of objects a few pixels wide. Either way the result is in pixels/frame of the
frames given, so a 32-pixel clip still gets usable flow.

cv2 is imported inside the functions so that importing `kinetoscope.client` stays light.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass

import numpy as np

FLOW_METHODS = ("tvl1", "dis")
DEFAULT_METHOD = "tvl1"
MIN_SIDE = 96
"""Frames whose short side is smaller are upsampled (by a whole factor) to at least this."""
FLOW_BOUND = 20.0
"""Flow is clipped to ±this many pixels/frame, the bound of two-stream training data."""


@dataclass(frozen=True)
class TVL1Settings:
    """Dual TV-L1 parameters, in the order OpenCV takes them; the defaults are OpenCV's own.

    Two-stream networks were trained on flow from OpenCV's TV-L1 with these defaults
    (then clipped to ±20 px), so they are the ones to reproduce their inputs.
    """

    tau: float = 0.25  # time step of the numerical scheme
    lambda_: float = 0.15  # weight of the data term against smoothness (images in 0..255)
    theta: float = 0.3  # coupling between the two sub-problems
    scales: int = 5  # pyramid levels
    warps: int = 5  # warpings per level
    epsilon: float = 0.01  # stopping threshold
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8  # downsampling factor between pyramid levels
    gamma: float = 0.0  # weight of the illumination-change term (0: off, as in the original)
    median_filtering: int = 5  # median filter size applied to the flow between warps


TVL1 = TVL1Settings()


def tvl1_available() -> bool:
    """Whether this OpenCV build has TV-L1 (the contrib build does, opencv-python does not)."""
    import cv2

    return hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create")


def check_method(method: str) -> None:
    """A clear ValueError for an unknown estimator or one this installation lacks."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")
    if method == "tvl1" and not tvl1_available():
        raise ValueError("TV-L1 flow needs OpenCV's contrib build (cv2.optflow): install opencv-contrib-python-headless "
                         "in place of opencv-python-headless, or use the faster DIS flow (method 'dis')")


def optical_flow(frames: np.ndarray, *, method: str = DEFAULT_METHOD, min_side: int = MIN_SIDE) -> np.ndarray:
    """`[T, H, W, 3]` uint8 RGB frames → `[T − 1, 2, H, W]` float32 flow in pixels/frame, within ±FLOW_BOUND."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"optical_flow needs RGB frames [T, H, W, 3], got shape {frames.shape}")
    check_method(method)
    count, height, width, _ = frames.shape
    if count < 2:
        return np.zeros((0, 2, height, width), dtype=np.float32)
    factor = max(1, math.ceil(min_side / min(height, width)))
    gray = [_upsample(_grayscale(frame), factor) for frame in frames]
    estimator = _estimator(method)
    fields = [_downsample(estimator.calc(a, b, None), factor, (height, width)) for a, b in zip(gray[:-1], gray[1:])]
    flow = np.stack(fields).transpose(0, 3, 1, 2)
    return np.clip(flow, -FLOW_BOUND, FLOW_BOUND).astype(np.float32, copy=False)


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
        return cv2.optflow.DualTVL1OpticalFlow_create(*astuple(TVL1))
    preset = getattr(cv2, "DISOpticalFlow_PRESET_MEDIUM", None)
    if preset is None:
        preset = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    dis = cv2.DISOpticalFlow_create(preset)
    dis.setFinestScale(0)  # full resolution: the inputs are already small
    dis.setPatchStride(2)  # denser patches: small shapes move coherently
    return dis
