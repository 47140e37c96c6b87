"""Speed tuning: replay clips faster or slower and see which speed each unit prefers.

Section 4.1.1 of the paper finds a fusion unit that allows "a range of speeds and
accelerations". Here a unit's tuning curve is its mean response to the same clips
replayed at speeds ¼, ½, 1, 2, 4 (`SPEEDS`), made two ways:

* `synthetic_replay` renders the zoo's synthetic clips again with every velocity
  multiplied by the speed (same seed: same background, shape and start), which is exact
  for constant-velocity classes: the generator writes the exact flow of what it renders;
* `resample` replays any model input in time about its middle step c = (K − 1)/2: step k
  of the replay is the original at τ = c + speed·(k − c), linearly interpolated between
  neighbouring steps and clamped at the ends. Per input kind (axes as in
  `engine.geometry.canonical`):
  - `image` (one frame): unchanged;
  - `video` [C, T, H, W]: frames resampled along T;
  - `stacked_flow` (x1, y1, x2, y2, … interleaved) and `stacked_flow_planar` (x1…xL, y1…yL):
    the L fields resampled along L, then multiplied by the speed (a displacement per
    frame grows with the frame rate's inverse) and clipped to the input's value range;
  - `flow_video` [2, T, H, W]: resampled along T, multiplied and clipped likewise.
  Resampled flow stays where it was in the image (it does not follow moving objects), so
  for real clips `synthetic_replay` or re-extracted flow is more faithful.

The invariance index is min_s R(s) / max_s R(s) of the curve R made non-negative like
selectivity's responses (shifted by the most negative per-clip response, if any): 1 for
a unit indifferent to speed, 0 for one silent at some speed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch

from kinetoscope.common import MOTION_KINDS
from kinetoscope.model_zoo.synthetic import ClassSpec, SyntheticActions, make_clip, two_stream_input
from kinetoscope.server.importer import InputSpec

from ..geometry import canonical_view
from .responses import ResponseFunction

SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class SpeedTuning:
    """Per unit (C units) of one layer over S speeds."""

    layer: str
    speeds: tuple[float, ...]
    curve: np.ndarray  # [S, C] mean raw response per speed
    preferred: np.ndarray  # [C] the speed of the curve's maximum
    invariance: np.ndarray  # [C] min/max of the non-negative curve, in [0, 1]


class ReplayClips(NamedTuple):
    """Synthetic clips rendered at one speed: the inputs of a two-stream and of a 3D network."""

    rgb: np.ndarray  # [N, 3, H, W]
    flow: np.ndarray  # [N, 2L, H, W] interleaved, ×flow_scale
    video: np.ndarray  # [N, 3, T, H, W]
    labels: np.ndarray  # [N]


def resample(array: np.ndarray, spec: InputSpec, speed: float) -> np.ndarray:
    """A batch [N, *input shape without batch] of `spec`'s input replayed at `speed` (see the module docstring)."""
    if not speed > 0 or not math.isfinite(speed):
        raise ValueError(f"speed must be a positive number, got {speed}")
    array = np.asarray(array)
    if spec.kind == "image" or spec.kind is None:
        return array.copy()
    steps = _canonical(array, spec)  # [N, K, D, H, W]
    count = steps.shape[1]
    centre = (count - 1) / 2
    tau = np.clip(centre + speed * (np.arange(count) - centre), 0, count - 1)
    low = np.floor(tau).astype(int)
    high = np.minimum(low + 1, count - 1)
    weight = (tau - low)[None, :, None, None, None]
    out = steps[:, low] * (1 - weight) + steps[:, high] * weight
    if spec.kind in MOTION_KINDS:
        out = out * speed
        if spec.value_range is not None:
            out = np.clip(out, *spec.value_range)
    return _from_canonical(out.astype(array.dtype), array.shape, spec)


def replay_inputs(clips: Mapping[str, np.ndarray], specs: Sequence[InputSpec], speed: float) -> dict[str, np.ndarray]:
    """Every graph input of the clips resampled to `speed`."""
    return {spec.name: resample(clips[spec.name], spec, speed) for spec in specs}


def scaled_class(spec: ClassSpec, speed: float) -> ClassSpec:
    """The class with its velocity times `speed`; only constant-velocity motion scales exactly."""
    if spec.motion != "linear":
        raise ValueError(f"class {spec.name!r} moves by {spec.motion!r}: only linear motion replays exactly; "
                         "use resample() for it")
    return dataclasses.replace(spec, speed=spec.speed * speed)


def synthetic_replay(dataset: SyntheticActions, labels: Sequence[int], speed: float, seed: int = 0) -> ReplayClips:
    """One clip per entry of `labels`, rendered with velocities × `speed`; the same scenes at every speed."""
    labels = np.asarray(labels, np.int64)
    classes = list(dataset.classes)
    for label in sorted(set(labels.tolist())):
        if not 0 <= label < len(classes):
            raise ValueError(f"label {label} is not a class of the dataset (0..{len(classes) - 1})")
        classes[label] = scaled_class(classes[label], speed)
    clips = [make_clip(int(label), (dataset.seed, 2, seed, i), size=dataset.size, frames=dataset.frames,
                       classes=classes, style=dataset.style) for i, label in enumerate(labels)]
    pairs = [two_stream_input(clip, dataset.flow_fields, dataset.flow_scale) for clip in clips]
    return ReplayClips(np.stack([p.rgb for p in pairs]), np.stack([p.flow for p in pairs]),
                       np.stack([clip.video for clip in clips]), labels)


def synthetic_feeds(specs: Sequence[InputSpec], clips: ReplayClips) -> dict[str, np.ndarray]:
    """Graph inputs from synthetic clips by kind: image ← rgb, stacked_flow ← flow, video ← video."""
    sources = {"image": clips.rgb, "stacked_flow": clips.flow, "video": clips.video}
    feeds = {}
    for spec in specs:
        if spec.kind not in sources or spec.layout not in ("NCHW", "NCTHW"):
            raise ValueError(f"input {spec.name!r} ({spec.kind}, {spec.layout}): synthetic clips feed channel-first "
                             "image, stacked_flow and video inputs only")
        feeds[spec.name] = sources[spec.kind]
    return feeds


def tuning(layer: str, speeds: Sequence[float], responses: Sequence[np.ndarray]) -> SpeedTuning:
    """The tuning curve of every unit from per-speed responses [N, C] (one array per speed, same clips)."""
    if len(speeds) != len(responses) or len(speeds) < 2:
        raise ValueError("give responses for each of at least two speeds")
    stacked = np.stack([np.asarray(r, np.float64) for r in responses])  # [S, N, C]
    curve = stacked.mean(axis=1)
    shift = np.minimum(stacked.min(axis=(0, 1)), 0.0)
    positive = curve - shift
    top = positive.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        invariance = np.where(top > 0, positive.min(axis=0) / np.where(top > 0, top, 1.0), 1.0)
    return SpeedTuning(layer, tuple(float(s) for s in speeds), curve,
                       np.asarray(speeds, np.float64)[np.argmax(curve, axis=0)], invariance)


def speed_tuning(function: ResponseFunction, clips: Mapping[str, np.ndarray],
                 speeds: Sequence[float] = SPEEDS) -> dict[str, SpeedTuning]:
    """Tuning per layer of `function`, the clips replayed by `resample`."""
    runs = [function(replay_inputs(clips, function.model.inputs, speed)) for speed in speeds]
    return {layer.name: tuning(layer.name, speeds, [run[layer.name] for run in runs]) for layer in function.layers}


def synthetic_speed_tuning(function: ResponseFunction, dataset: SyntheticActions, labels: Sequence[int],
                           speeds: Sequence[float] = SPEEDS, seed: int = 0) -> dict[str, SpeedTuning]:
    """Tuning per layer of `function`, the clips rendered again at each speed by `synthetic_replay`."""
    runs = [function(synthetic_feeds(function.model.inputs, synthetic_replay(dataset, labels, speed, seed)))
            for speed in speeds]
    return {layer.name: tuning(layer.name, speeds, [run[layer.name] for run in runs]) for layer in function.layers}


def _canonical(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """[N, *shape] → [N, K, D, H, W] float64, by the same view the regularizers use."""
    view = canonical_view(torch.from_numpy(np.ascontiguousarray(array)), spec.layout, spec.kind, spec.name)
    return view.numpy().astype(np.float64)


def _from_canonical(steps: np.ndarray, shape: tuple[int, ...], spec: InputSpec) -> np.ndarray:
    """The inverse of `_canonical`: where each canonical element came from, read off the view of an index array."""
    index = canonical_view(torch.arange(math.prod(shape[1:])).reshape(1, *shape[1:]), spec.layout, spec.kind, spec.name)
    out = np.empty((shape[0], math.prod(shape[1:])), steps.dtype)
    out[:, index.reshape(-1).numpy()] = steps.reshape(shape[0], -1)
    return out.reshape(shape)
