"""Procedural action clips with exact optical flow, so that what a network learns is known.

Each clip shows one coloured shape (disc, square, triangle) moving rigidly over a
static, textured background. The shape is a sprite sampled once at pixel centres and
pasted at integer positions (its continuous trajectory rounded per frame), so the
flow is exact for the rendering: every visible shape pixel of frame t moves by the
integer displacement `position[t+1] − position[t]`, and the background has zero flow.

Conventions (those of kinetoscope's inputs):

* RGB values are pixel − 128 for 8-bit pixels, so -128..127, float32.
* Flow fields are pixels/frame, x (rightwards) then y (downwards). The two-stream
  input stacks L fields as `[2L, H, W]` interleaved x1, y1, x2, y2, … and multiplies
  them by `flow_scale` (default 16: 1 px/frame → 16, so the default classes' flow,
  at most 4 px/frame, spans about half of -128..127), clipped to -128..127.
* Videos are `[3, T, H, W]`; the two-stream RGB frame is the middle frame
  `(T − 1) // 2` and its flow stack is centred on it.

Motion kinds: `linear` (constant velocity), `accelerate` (velocity growing linearly
from 0 to 2·speed, so `speed` is the mean over the clip; each step is rounded to whole
pixels so the rendered speed never decreases), `oscillate` (back and forth
along `direction` at constant `speed`, reversing every `period // 2` frames, random
phase; its mean flow is near zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from .flow_ops import flow_to_input, stack_flow

MOTIONS = ("linear", "accelerate", "oscillate")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "blue": (40, 80, 225),
    "green": (40, 190, 70),
    "yellow": (235, 215, 40),
    "pink": (240, 90, 190),
    "cyan": (40, 205, 215),
    "orange": (245, 140, 30),
}

DIRECTIONS: dict[str, tuple[float, float]] = {
    "right": (1.0, 0.0),
    "left": (-1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "down_right": (math.sqrt(0.5), math.sqrt(0.5)),
    "down_left": (-math.sqrt(0.5), math.sqrt(0.5)),
    "up_right": (math.sqrt(0.5), -math.sqrt(0.5)),
    "up_left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "horizontal": (1.0, 0.0),
    "vertical": (0.0, 1.0),
}


@dataclass(frozen=True)
class ClassSpec:
    """One action class: an appearance (colour, shape) and a motion (kind, direction, speed)."""

    name: str
    colour: tuple[int, int, int]
    shape: str
    motion: str
    direction: tuple[float, float]
    speed: float
    period: int = 6

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"class {self.name!r}: unknown shape {self.shape!r}; known: {', '.join(SHAPES)}")
        if self.motion not in MOTIONS:
            raise ValueError(f"class {self.name!r}: unknown motion {self.motion!r}; known: {', '.join(MOTIONS)}")
        norm = math.hypot(*self.direction)
        if not math.isclose(norm, 1.0, rel_tol=1e-6):
            raise ValueError(f"class {self.name!r}: direction {self.direction} is not a unit vector")
        if self.speed < 0 or self.period < 2:
            raise ValueError(f"class {self.name!r}: needs speed ≥ 0 and period ≥ 2")

    @property
    def velocity(self) -> np.ndarray:
        """Mean displacement (dx, dy) in pixels/frame; zero for oscillation, which goes back and forth."""
        if self.motion == "oscillate":
            return np.zeros(2)
        return np.asarray(self.direction) * self.speed


def class_spec(colour: str, shape: str, direction: str, speed: float, motion: str = "linear", suffix: str = "", period: int = 6) -> ClassSpec:
    """Build a ClassSpec named `colour_shape_direction[_suffix]` from the named colours and directions."""
    name = "_".join(part for part in (colour, shape, direction, suffix) if part)
    return ClassSpec(name, COLOURS[colour], shape, motion, DIRECTIONS[direction], float(speed), period)


@dataclass(frozen=True)
class RenderStyle:
    """How clips look; every field is class-independent so appearance never leaks motion."""

    radius: tuple[float, float] = (0.12, 0.18)  # shape radius, fraction of size
    jitter: float = 0.125  # middle-frame centre uniform in size/2 ± jitter·size
    brightness: tuple[float, float] = (0.8, 1.0)  # per-clip factor on the class colour
    texture: float = 0.08  # relative amplitude of the shape's own (rigidly moving) texture
    background: tuple[float, float] = (80.0, 170.0)  # range of the background's mean grey
    background_contrast: float = 30.0  # amplitude of the smooth background texture
    background_tint: float = 10.0  # per-channel amplitude, keeps the background unsaturated
    background_noise: float = 6.0  # per-pixel static noise
    background_cells: int = 5  # resolution of the smooth background texture


class Clip(NamedTuple):
    """One rendered clip with its ground truth."""

    video: np.ndarray  # [3, T, H, W] float32, pixel − 128
    flow: np.ndarray  # [T − 1, 2, H, W] float32, pixels/frame (x, y) of frame t → t + 1
    mask: np.ndarray  # [T, H, W] bool, visible shape pixels
    positions: np.ndarray  # [T, 2] int, rendered (x, y) of the sprite centre
    label: int


class TwoStreamSample(NamedTuple):
    """Two-stream input: one RGB frame and L stacked flow fields (batched or not)."""

    rgb: np.ndarray  # [(N,) 3, H, W] float32
    flow: np.ndarray  # [(N,) 2L, H, W] float32, ×flow_scale
    label: np.ndarray | int


class VideoSample(NamedTuple):
    """3D-ConvNet input: an RGB clip (batched or not)."""

    video: np.ndarray  # [(N,) 3, T, H, W] float32
    label: np.ndarray | int


# ---------------------------------------------------------------- shapes


def _disc(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Pixels whose centre lies in a disc of radius r."""
    return u * u + v * v <= r * r


def _square(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Pixels in an axis-aligned square of half-side 0.85·r (about a disc's area)."""
    half = 0.85 * r
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def _triangle(u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Pixels in an equilateral triangle of circumradius 1.25·r (about a disc's area)."""
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        angle = math.pi / 2 + 2 * math.pi * k / 3
        inside &= u * math.cos(angle) + v * math.sin(angle) >= -0.625 * r
    return inside


SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
}


# ---------------------------------------------------------------- default classes


def default_classes() -> tuple[ClassSpec, ...]:
    """Ten classes: a fusion quadruple, a speed pair, diagonals, oscillation and acceleration.

    * red/blue × right/left discs at the same speed: colour alone or motion alone
      each leaves two classes confused, only their conjunction separates all four;
    * green squares going up at 1 and 3 px/frame: they differ only in speed;
    * the rest cover diagonals (integer velocities (2, 2) and (−1, −1)), a horizontal
      back-and-forth motion and a downward acceleration.
    """
    return (
        class_spec("red", "disc", "right", 2),
        class_spec("red", "disc", "left", 2),
        class_spec("blue", "disc", "right", 2),
        class_spec("blue", "disc", "left", 2),
        class_spec("green", "square", "up", 1, suffix="slow"),
        class_spec("green", "square", "up", 3, suffix="fast"),
        class_spec("yellow", "triangle", "down_right", 2 * math.sqrt(2)),
        class_spec("orange", "triangle", "up_left", math.sqrt(2)),
        class_spec("pink", "square", "horizontal", 2, motion="oscillate", suffix="oscillate"),
        class_spec("cyan", "disc", "down", 2, motion="accelerate", suffix="accelerate"),
    )


DEFAULT_CLASSES: tuple[ClassSpec, ...] = default_classes()


def identical_classes(spec: ClassSpec, count: int) -> tuple[ClassSpec, ...]:
    """`count` classes that all render as `spec`: labels carry no information about the clips.

    For measuring a selectivity test's false positives on real clips: every class has the
    same colour, shape and motion statistics, so any unit labelled class-specific is one.
    """
    if count < 2:
        raise ValueError(f"give at least two classes, got {count}")
    return tuple(replace(spec, name=f"{spec.name}_{k}") for k in range(count))


FUSION_QUAD = ("red_disc_right", "red_disc_left", "blue_disc_right", "blue_disc_left")
SPEED_PAIR = ("green_square_up_slow", "green_square_up_fast")


# ---------------------------------------------------------------- rendering


def trajectory(spec: ClassSpec, frames: int, phase: int = 0) -> np.ndarray:
    """Continuous offsets `[T, 2]` (x, y) of the shape relative to the middle frame."""
    t = np.arange(frames, dtype=np.float64)
    direction = np.asarray(spec.direction)
    if spec.motion == "linear":
        offsets = spec.speed * t[:, None] * direction[None, :]
    elif spec.motion == "accelerate":
        # whole-pixel steps of the mid-step velocity: after rounding the speed still never decreases
        accel = 2.0 * spec.speed / max(frames - 1, 1)
        steps = np.rint(accel * (t[:-1, None] + 0.5) * direction[None, :])
        offsets = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    else:
        half = max(spec.period // 2, 1)
        sign = np.where(((t[:-1] + phase) // half) % 2 == 0, 1.0, -1.0)
        steps = sign[:, None] * spec.speed * direction[None, :]
        offsets = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return offsets - offsets[(frames - 1) // 2]


@lru_cache(maxsize=16)
def _upsampler(cells: int, size: int) -> np.ndarray:
    """Bilinear interpolation matrix `[size, cells]`, for a smooth background from a coarse grid."""
    coords = np.linspace(0, cells - 1, size)
    low = np.clip(np.floor(coords).astype(int), 0, cells - 2)
    frac = coords - low
    matrix = np.zeros((size, cells))
    matrix[np.arange(size), low] = 1 - frac
    matrix[np.arange(size), low + 1] = frac
    return matrix


def _background(rng: np.random.Generator, size: int, style: RenderStyle) -> np.ndarray:
    """Static unsaturated texture `[3, H, W]` in 0..255: smooth grey + small tint + pixel noise."""
    cells = style.background_cells
    base = rng.uniform(*style.background)
    luminance = rng.standard_normal((cells, cells)) * style.background_contrast
    tint = rng.standard_normal((3, cells, cells)) * style.background_tint
    up = _upsampler(cells, size)
    smooth = up @ (luminance[None] + tint) @ up.T
    noise = rng.standard_normal((3, size, size)) * style.background_noise
    return base + smooth + noise


def _sprite(spec: ClassSpec, rng: np.random.Generator, size: int, style: RenderStyle) -> tuple[np.ndarray, np.ndarray]:
    """Shape pixels as local offsets `[n, 2]` (x, y) and their colours `[3, n]` in 0..255."""
    radius = rng.uniform(*style.radius) * size
    angle = rng.uniform(0, 2 * math.pi)
    centre = rng.uniform(-0.5, 0.5, size=2)
    reach = int(math.ceil(1.3 * radius)) + 1
    grid = np.arange(-reach, reach + 1, dtype=np.float64)
    x, y = np.meshgrid(grid - centre[0], grid - centre[1])
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    ys, xs = np.nonzero(SHAPES[spec.shape](u, v, radius))
    offsets = np.stack([xs - reach, ys - reach], axis=1)
    shade = rng.uniform(*style.brightness) * (1.0 + style.texture * rng.standard_normal(len(xs)))
    colours = np.asarray(spec.colour, dtype=np.float64)[:, None] * shade[None, :]
    return offsets, colours


def _resolve(classes: Sequence[ClassSpec] | int | None) -> tuple[ClassSpec, ...]:
    """A class list from None (the defaults), a count (the first n defaults) or explicit specs."""
    if classes is None:
        return DEFAULT_CLASSES
    if isinstance(classes, int):
        if not 1 <= classes <= len(DEFAULT_CLASSES):
            raise ValueError(f"num_classes must be 1..{len(DEFAULT_CLASSES)}, got {classes}")
        return DEFAULT_CLASSES[:classes]
    return tuple(classes)


def make_clip(
    class_index: int,
    seed: int | Sequence[int],
    *,
    size: int = 32,
    frames: int = 11,
    classes: Sequence[ClassSpec] | int | None = None,
    style: RenderStyle = RenderStyle(),
) -> Clip:
    """Render one clip of class `class_index`, the same for the same seed."""
    specs = _resolve(classes)
    spec = specs[class_index]
    if frames < 2 or size < 8:
        raise ValueError(f"need frames ≥ 2 and size ≥ 8, got frames={frames}, size={size}")
    rng = np.random.default_rng(seed)
    background = _background(rng, size, style)
    offsets, colours = _sprite(spec, rng, size, style)
    centre = size / 2 - 0.5 + rng.uniform(-style.jitter, style.jitter, size=2) * size
    phase = int(rng.integers(0, max(spec.period, 1)))
    positions = np.rint(centre[None, :] + trajectory(spec, frames, phase)).astype(np.int64)
    return _compose(background, offsets, colours, positions, class_index)


def _compose(background: np.ndarray, offsets: np.ndarray, colours: np.ndarray, positions: np.ndarray, label: int) -> Clip:
    """Paste the sprite at each frame's position and write its exact flow, all frames at once."""
    _, height, width = background.shape
    frames = len(positions)
    xs = positions[:, None, 0] + offsets[None, :, 0]  # [T, n]
    ys = positions[:, None, 1] + offsets[None, :, 1]
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    tt, pixel = np.nonzero(inside)
    xs, ys = xs[tt, pixel], ys[tt, pixel]

    video = np.repeat(background[:, None], frames, axis=1)
    video[:, tt, ys, xs] = colours[:, pixel]
    video = np.clip(np.rint(video), 0, 255).astype(np.float32) - 128.0

    mask = np.zeros((frames, height, width), dtype=bool)
    mask[tt, ys, xs] = True

    steps = np.diff(positions, axis=0).astype(np.float32)  # [T − 1, 2]
    flow = np.zeros((frames - 1, 2, height, width), dtype=np.float32)
    moving = tt < frames - 1
    tm, ym, xm = tt[moving], ys[moving], xs[moving]
    flow[tm, 0, ym, xm] = steps[tm, 0]
    flow[tm, 1, ym, xm] = steps[tm, 1]
    return Clip(video, flow, mask, positions, int(label))


def flow_window(frames: int, flow_fields: int) -> int:
    """First flow field of the L-field stack centred on the middle frame `(T − 1) // 2`."""
    if not 1 <= flow_fields <= frames - 1:
        raise ValueError(f"flow_fields must be 1..frames − 1 = {frames - 1}, got {flow_fields}")
    middle = (frames - 1) // 2
    return min(max(middle - flow_fields // 2, 0), frames - 1 - flow_fields)


def two_stream_input(clip: Clip, flow_fields: int, flow_scale: float = 16.0) -> TwoStreamSample:
    """The middle RGB frame `[3, H, W]` and the centred flow stack `[2L, H, W]` (×flow_scale)."""
    frames = clip.video.shape[1]
    start = flow_window(frames, flow_fields)
    rgb = np.ascontiguousarray(clip.video[:, (frames - 1) // 2])
    flow = flow_to_input(stack_flow(clip.flow[start : start + flow_fields]), flow_scale)
    return TwoStreamSample(rgb, flow, clip.label)


# ---------------------------------------------------------------- dataset


@dataclass(frozen=True)
class SyntheticActions:
    """A deterministic, balanced dataset of synthetic actions: sample i has label i mod C."""

    classes: Sequence[ClassSpec] | int | None = None
    size: int = 32
    frames: int = 11
    flow_fields: int = 10
    seed: int = 0
    length: int = 1000
    flow_scale: float = 16.0
    style: RenderStyle = field(default_factory=RenderStyle)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", _resolve(self.classes))
        flow_window(self.frames, self.flow_fields)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [spec.name for spec in self.classes]

    def class_index(self, name: str) -> int:
        """Label of the class called `name`."""
        return self.class_names.index(name)

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> Clip:
        """Full clip (video, exact flow, mask) behind sample `index`."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        index %= self.length
        return self._render(index % self.num_classes, (self.seed, 0, index))

    def __getitem__(self, index: int) -> TwoStreamSample:
        return two_stream_input(self.clip(index), self.flow_fields, self.flow_scale)

    def video(self, index: int) -> VideoSample:
        """RGB clip `[3, T, H, W]` and label of sample `index`, for a 3D ConvNet."""
        clip = self.clip(index)
        return VideoSample(clip.video, clip.label)

    def batch(self, n: int, seed: int = 0) -> TwoStreamSample:
        """n two-stream samples, classes balanced (counts differ by at most one), fixed by `seed`."""
        samples = [two_stream_input(clip, self.flow_fields, self.flow_scale) for clip in self._clips(n, seed)]
        return TwoStreamSample(
            np.stack([s.rgb for s in samples]),
            np.stack([s.flow for s in samples]),
            np.array([s.label for s in samples], dtype=np.int64),
        )

    def video_batch(self, n: int, seed: int = 0) -> VideoSample:
        """n RGB clips `[n, 3, T, H, W]` with labels, balanced and fixed by `seed` like `batch`."""
        clips = [VideoSample(c.video, c.label) for c in self._clips(n, seed)]
        return VideoSample(np.stack([c.video for c in clips]), np.array([c.label for c in clips], dtype=np.int64))

    def _clips(self, n: int, seed: int) -> Iterator[Clip]:
        """Balanced labels in a seeded order, each clip seeded by (dataset seed, batch seed, position)."""
        labels = np.random.default_rng((self.seed, 1, seed)).permutation(np.arange(n) % self.num_classes)
        return (self._render(int(label), (self.seed, 1, seed, i)) for i, label in enumerate(labels))

    def _render(self, label: int, seed: tuple[int, ...]) -> Clip:
        return make_clip(label, seed, size=self.size, frames=self.frames, classes=self.classes, style=self.style)
