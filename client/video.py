"""From video files to a model's inputs: decode, sample clips, estimate flow, lay them out.

Users have video files, the models want tensors laid out as they declare them. The
conventions are those of kinetoscope's inputs (and of `kinetoscope.model_zoo.synthetic`):

* RGB pixels 0..255 are mapped linearly onto the input's value range, so the default
  range -128..127 gives `pixel − 128`.
* Optical flow is in pixels/frame (x rightwards, y downwards) of the frames the model
  sees, i.e. after resizing, clipped to ±20 px/frame, estimated with TV-L1 unless
  `flow_method="dis"` asks for the faster DIS (see `kinetoscope.client.flow`). Flow inputs take it
  multiplied by `flow_scale` and clipped to the input's range. The default
  `FLOW_SCALE = 16` is the synthetic dataset's convention (1 px/frame → 16, so 4
  px/frame spans half of -128..127); pass the scale the model was trained with. Zero
  motion maps to 0, or to the middle of the range when the range excludes 0 (flow
  stored as 0..255 images).
* An `image` input is the clip's middle frame `(T − 1) // 2`; a stacked flow input of
  2L channels holds the L fields centred on that frame, interleaved x1, y1, x2, y2, …
  (`stacked_flow`) or x1…xL, y1…yL (`stacked_flow_planar`); `video` is `[3, T, H, W]`
  and `flow_video` `[2, T, H, W]`, both centred in the clip. Channel-last layouts
  (NHWC, NTHWC) get the same arrays with the axes moved.

PyAV, OpenCV and the progress bar (tqdm) are imported inside the functions, so that importing
`kinetoscope.client` stays light.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import numpy as np

from kinetoscope.common import (
    DEFAULT_RANGE, MOTION_KINDS, STACKED_FLOW_KINDS, InputKind, InputSpec, LayoutError, axis_sizes,
    from_canonical, infer_kind, parse_kind, sample_layout,
)

from .flow import DEFAULT_METHOD, FLOW_METHODS, check_method, optical_flow, tvl1_available

__all__ = [
    "FLOW_METHODS", "FLOW_SCALE", "VIDEO_EXTENSIONS", "VideoClips", "clips_from_videos", "decode",
    "optical_flow", "sample_clips", "to_inputs", "tvl1_available",
]

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ogv", ".wmv", ".flv", ".3gp", ".ts",
})
FLOW_SCALE = 16.0
"""Input units per pixel/frame of flow, the synthetic dataset's convention."""


class VideoClips(NamedTuple):
    """Model inputs cut from a folder of videos, one row per clip."""

    inputs: dict[str, np.ndarray]  # name → [N, *input shape without batch] float32
    labels: np.ndarray  # [N] int64, index into class_names
    ids: list[str]  # "<class>/<file>#<clip index>"
    class_names: list[str]  # sorted sub-folder names


# ---------------------------------------------------------------- decoding


def decode(path: str | Path, *, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """All frames of a video as `[T, H, W, 3]` uint8 RGB, centre-cropped and resized to `size` (H, W)."""
    import av

    target = _target_size(size)
    frames = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(rgb if target is None else _crop_resize(rgb, target))
    if not frames:
        raise ValueError(f"{path}: no frames could be decoded")
    return np.stack(frames)


def _target_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """`size` as (height, width): an int means a square."""
    if size is None:
        return None
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(height), int(width)


def _crop_box(height: int, width: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of the largest centred crop with the target's aspect ratio."""
    out_h, out_w = target
    if width * out_h > height * out_w:  # too wide: keep the full height
        crop_h, crop_w = height, max(1, round(height * out_w / out_h))
    else:
        crop_h, crop_w = max(1, round(width * out_h / out_w)), width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def _crop_resize(image: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Centre crop to the target's aspect, then area resize: no distortion, no aliasing."""
    import cv2

    top, left, crop_h, crop_w = _crop_box(*image.shape[:2], target)
    crop = image[top : top + crop_h, left : left + crop_w]
    if crop.shape[:2] == target:
        return np.ascontiguousarray(crop)
    return cv2.resize(np.ascontiguousarray(crop), (target[1], target[0]), interpolation=cv2.INTER_AREA)


def _fit_flow(flow: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """`[K, 2, H, W]` flow cropped and resized like the frames, vectors rescaled to the new pixels."""
    if flow.shape[-2:] == target:
        return flow
    _, _, crop_h, crop_w = _crop_box(*flow.shape[-2:], target)
    fields = np.stack([_crop_resize(np.ascontiguousarray(f.transpose(1, 2, 0)), target) for f in flow])
    fields = fields.transpose(0, 3, 1, 2) * np.array([target[1] / crop_w, target[0] / crop_h])[None, :, None, None]
    return fields.astype(np.float32)


# ---------------------------------------------------------------- clips


def sample_clips(frames: np.ndarray, length: int, count: int, stride: int = 1) -> np.ndarray:
    """`count` evenly spaced clips `[count, length, H, W, 3]`, every `stride`-th frame.

    Clip i starts at the centre of the i-th of `count` equal parts of the possible
    starts, so one clip is the video's middle. A video shorter than one clip is padded
    by repeating its last frame, so that short videos still count.
    """
    if length < 1 or count < 1 or stride < 1:
        raise ValueError(f"length, count and stride must be ≥ 1, got {length}, {count}, {stride}")
    frames = np.asarray(frames)
    if len(frames) == 0:
        raise ValueError("no frames to sample clips from")
    span = (length - 1) * stride + 1
    if len(frames) < span:
        frames = np.concatenate([frames, np.repeat(frames[-1:], span - len(frames), axis=0)])
    room = len(frames) - span
    starts = np.floor(room * (np.arange(count) + 0.5) / count + 0.5).astype(np.int64)
    return frames[starts[:, None] + stride * np.arange(length)[None, :]]


# ---------------------------------------------------------------- model inputs


def to_inputs(
    clip_frames: np.ndarray,
    flow: np.ndarray | None,
    model_inputs: Iterable[Any],
    *,
    flow_scale: float = FLOW_SCALE,
    flow_method: str = DEFAULT_METHOD,
) -> dict[str, np.ndarray]:
    """One clip `[T, H, W, 3]` uint8 (and its flow `[T − 1, 2, H, W]`) → {input name: array without batch}.

    `model_inputs` are `InputInfo`s or dicts with name, shape (with batch), kind, layout
    and value_range (or range). `flow` is estimated here (with `flow_method`, "tvl1" or
    "dis") when None and an input needs it.
    Frames or flow of another size than an input's are centre-cropped and resized to it.
    """
    specs = [_spec(item) for item in model_inputs]
    frames = np.asarray(clip_frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"clip frames must be [T, H, W, 3] RGB, got shape {frames.shape}")
    if flow is None and any(spec.kind in MOTION_KINDS for spec in specs):
        flow = optical_flow(frames, method=flow_method)
    return {spec.name: _arrange(_canonical(spec, frames, flow, flow_scale), spec) for spec in specs}


def _field(item: Any, *names: str) -> Any:
    """The first of `names` present on an object or a mapping, else None."""
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def _spec(item: Any) -> InputSpec:
    """Normalizes an InputInfo-like object or dict, filling what the server would infer."""
    name, shape = _field(item, "name"), _field(item, "shape")
    if name is None or shape is None:
        raise ValueError(f"a model input needs a name and a shape, got {item!r}")
    shape = tuple(int(d) for d in shape)
    layout = _field(item, "layout") or {4: "NCHW", 5: "NCTHW"}.get(len(shape))
    if not _fits(layout, shape):
        raise ValueError(f"input {name!r}: layout {layout!r} does not fit shape {shape} (use NCHW, NHWC, NCTHW or NTHWC)")
    dims = axis_sizes(shape, layout)
    declared = _field(item, "kind")
    try:
        kind = parse_kind(declared) if declared else infer_kind(dims["C"], "T" in dims)
    except ValueError as exc:
        raise ValueError(f"input {name!r}: {exc}") from None
    lo, hi = (float(v) for v in (_field(item, "value_range", "range") or DEFAULT_RANGE))
    return InputSpec(name, shape, kind.value, (lo, hi), layout)


def _fits(layout: str | None, shape: tuple[int, ...]) -> bool:
    """A batched image or video layout with one letter per axis of `shape`."""
    try:
        return layout is not None and layout.startswith("N") and len(sample_layout(layout)) == len(shape) - 1
    except LayoutError:
        return False


def _frames_needed(spec: InputSpec) -> int:
    """Clip length an input needs: flow inputs need one frame more than fields."""
    dims = axis_sizes(spec.shape, spec.layout)
    if spec.kind == "image":
        return 1
    if spec.kind == "video":
        return dims["T"]
    if spec.kind == "flow_video":
        return dims["T"] + 1
    return dims["C"] // 2 + 1


def _canonical(spec: InputSpec, frames: np.ndarray, flow: np.ndarray | None, flow_scale: float) -> np.ndarray:
    """The input's values as `[C, H, W]` or `[C, T, H, W]` (channels first)."""
    dims = axis_sizes(spec.shape, spec.layout)
    size = (dims["H"], dims["W"])
    _check(spec, dims, len(frames))
    if spec.kind == "image":
        return _rgb_values(_fit_frames(frames[(len(frames) - 1) // 2][None], size)[0].transpose(2, 0, 1), spec)
    if spec.kind == "video":
        start = (len(frames) - dims["T"]) // 2
        return _rgb_values(_fit_frames(frames[start : start + dims["T"]], size).transpose(3, 0, 1, 2), spec)
    if flow is None or len(flow) != len(frames) - 1:
        raise ValueError(f"input {spec.name!r} needs flow [T − 1, 2, H, W] for {len(frames)} frames")
    if spec.kind == "flow_video":
        start = (len(flow) - dims["T"]) // 2
        return _flow_values(_fit_flow(flow[start : start + dims["T"]], size).transpose(1, 0, 2, 3), spec, flow_scale)
    fields = dims["C"] // 2
    start = _flow_window(len(frames), fields)
    window = _fit_flow(flow[start : start + fields], size)  # [L, 2, H, W]
    if spec.kind == "stacked_flow_planar":
        window = window.transpose(1, 0, 2, 3)
    return _flow_values(window.reshape(2 * fields, *size), spec, flow_scale)


def _check(spec: InputSpec, dims: dict[str, int], frames: int) -> None:
    """Clear errors for channel counts the kind cannot have and clips that are too short."""
    channels = {"image": 3, "video": 3, "flow_video": 2}.get(spec.kind)
    if channels is not None and dims["C"] != channels:
        raise ValueError(f"input {spec.name!r}: a {spec.kind} input has {channels} channels, shape {spec.shape} has {dims['C']}")
    if spec.kind in STACKED_FLOW_KINDS and (dims["C"] < 2 or dims["C"] % 2):
        raise ValueError(f"input {spec.name!r}: stacked flow needs an even channel count, got {dims['C']}")
    if ("T" in dims) != InputKind(spec.kind).has_time_axis:
        raise ValueError(f"input {spec.name!r}: kind {spec.kind} does not fit layout {spec.layout}")
    if frames < _frames_needed(spec):
        raise ValueError(f"input {spec.name!r} needs clips of {_frames_needed(spec)} frames, got {frames}")


def _flow_window(frames: int, fields: int) -> int:
    """First of the `fields` flow fields centred on the middle frame `(T − 1) // 2` (as the synthetic data)."""
    middle = (frames - 1) // 2
    return min(max(middle - fields // 2, 0), frames - 1 - fields)


def _fit_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`[K, H, W, 3]` frames at the input's spatial size."""
    if frames.shape[1:3] == size:
        return frames
    return np.stack([_crop_resize(frame, size) for frame in frames])


def _rgb_values(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """0..255 → the input's range, linearly (default: pixel − 128)."""
    lo, hi = spec.value_range
    return (lo + pixels.astype(np.float32) * np.float32((hi - lo) / 255.0)).astype(np.float32)


def _flow_values(fields: np.ndarray, spec: InputSpec, flow_scale: float) -> np.ndarray:
    """Pixels/frame → input units: ×flow_scale around zero (or the range's middle), clipped to the range."""
    lo, hi = spec.value_range
    zero = 0.0 if lo <= 0.0 <= hi else (lo + hi) / 2.0
    return np.clip(zero + fields * flow_scale, lo, hi).astype(np.float32)


def _arrange(canonical: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Channels-first `[C, (T,) H, W]` → the input's own axis order, checked against its shape."""
    array = np.ascontiguousarray(from_canonical(canonical, spec.layout))
    if array.shape != spec.shape[1:]:
        raise ValueError(f"input {spec.name!r}: built {array.shape}, the model declares {spec.shape[1:]}")
    return array


# ---------------------------------------------------------------- folders of videos


def clips_from_videos(
    folder: str | Path,
    model_inputs: Iterable[Any],
    *,
    clips_per_video: int = 1,
    flow_scale: float = FLOW_SCALE,
    stride: int = 1,
    flow_method: str = DEFAULT_METHOD,
) -> VideoClips:
    """Inputs for every video in `folder/<class>/<video files>`, labelled by sorted sub-folder name.

    Flow for motion inputs comes from `flow_method`: "tvl1" (as two-stream networks were
    trained, slow) or "dis" (fast). Unreadable videos are skipped with a warning naming
    them, so one bad file does not cost a whole run. Unpacks as (inputs, labels, ids, class_names).
    """
    from .progress import each  # noqa: PLC0415 - tqdm, only when videos are read

    specs = [_spec(item) for item in model_inputs]
    if not specs:
        raise ValueError("the model declares no inputs")
    class_names, videos = _find_videos(Path(folder))
    size = (max(axis_sizes(s.shape, s.layout)["H"] for s in specs), max(axis_sizes(s.shape, s.layout)["W"] for s in specs))
    length = max(_frames_needed(spec) for spec in specs)
    motion = any(spec.kind in MOTION_KINDS for spec in specs)
    if motion:
        check_method(flow_method)  # before decoding anything
    arrays: dict[str, list[np.ndarray]] = {spec.name: [] for spec in specs}
    labels: list[int] = []
    ids: list[str] = []
    for label, path in each(videos, "videos", "video"):
        frames = _decode_or_warn(path, size)
        if frames is None:
            continue
        for index, clip in enumerate(sample_clips(frames, length, clips_per_video, stride)):
            flow = optical_flow(clip, method=flow_method) if motion else None
            inputs = to_inputs(clip, flow, specs, flow_scale=flow_scale)
            for name, value in inputs.items():
                arrays[name].append(value)
            labels.append(label)
            ids.append(f"{class_names[label]}/{path.name}#{index}")
    if not labels:
        raise ValueError(f"none of the {len(videos)} videos under {folder} could be decoded")
    stacked = {name: np.stack(values) for name, values in arrays.items()}
    return VideoClips(stacked, np.array(labels, dtype=np.int64), ids, class_names)


def _find_videos(folder: Path) -> tuple[list[str], list[tuple[int, Path]]]:
    """Class names (sorted sub-folders that hold videos) and (label, path) for each video file."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; expected {folder}/<class>/<video files>")
    by_class: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if files:
            by_class[sub.name] = files
    if not by_class:
        raise ValueError(
            f"no videos in {folder}: expected one sub-folder per class, {folder}/<class>/<video files> "
            f"with extensions {', '.join(sorted(VIDEO_EXTENSIONS))}"
        )
    names = sorted(by_class)
    return names, [(label, path) for label, name in enumerate(names) for path in by_class[name]]


def _decode_or_warn(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """Decoded frames, or None with a warning naming the file it could not read."""
    import av

    try:
        return decode(path, size=size)
    except (av.FFmpegError, OSError, ValueError) as error:
        warnings.warn(f"skipping {path}: cannot decode it ({error})", stacklevel=3)
        return None
