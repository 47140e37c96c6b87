"""Input kinds and value ranges: what each graph input holds, in the words the wire, the store and the CLI use.

A kind says how an input stores appearance (RGB frames) or motion (optical flow), and
so how every part of kinetoscope reads it: the regularizers, the catalog's streams, the
video decoder that fills it and the display that shows it. The kind strings are the
wire format (`InputInfo.kind`, `NAME=1x3x224x224:KIND`); `InputKind` is a `str`, so a
member and its string compare, hash and print alike.
"""

from __future__ import annotations

from enum import StrEnum


class InputKind(StrEnum):
    """image [C,H,W]; stacked_flow [2L,H,W] interleaved x1,y1,x2,y2,…; stacked_flow_planar [2L,H,W] x1..xL then
    y1..yL; video [C,T,H,W] (RGB); flow_video [2,T,H,W]."""

    IMAGE = "image"
    STACKED_FLOW = "stacked_flow"
    STACKED_FLOW_PLANAR = "stacked_flow_planar"
    VIDEO = "video"
    FLOW_VIDEO = "flow_video"

    @property
    def is_motion(self) -> bool:
        """Optical flow (the motion stream); the other kinds are appearance."""
        return self in (InputKind.STACKED_FLOW, InputKind.STACKED_FLOW_PLANAR, InputKind.FLOW_VIDEO)

    @property
    def stream(self) -> str:
        """"motion" or "appearance", the words the catalog and the analyses use."""
        return "motion" if self.is_motion else "appearance"

    @property
    def has_time_axis(self) -> bool:
        """Video kinds have an axis T of their own; stacked flow keeps its fields in the channel axis."""
        return self in (InputKind.VIDEO, InputKind.FLOW_VIDEO)

    @property
    def sample_axes(self) -> str:
        """The canonical order of one sample's axes: CTHW for the video kinds, CHW for the others."""
        return "CTHW" if self.has_time_axis else "CHW"

    @property
    def is_stacked(self) -> bool:
        """Flow fields stacked in the channel axis, 2 channels a field."""
        return self in (InputKind.STACKED_FLOW, InputKind.STACKED_FLOW_PLANAR)

    @property
    def is_sequence(self) -> bool:
        """Shown as several frames: every kind but a single image."""
        return self is not InputKind.IMAGE


INPUT_KINDS: tuple[str, ...] = tuple(kind.value for kind in InputKind)
MOTION_KINDS: frozenset[str] = frozenset(kind.value for kind in InputKind if kind.is_motion)
APPEARANCE_KINDS: frozenset[str] = frozenset(kind.value for kind in InputKind if not kind.is_motion)
STACKED_FLOW_KINDS: frozenset[str] = frozenset(kind.value for kind in InputKind if kind.is_stacked)
SEQUENCE_KINDS: frozenset[str] = frozenset(kind.value for kind in InputKind if kind.is_sequence)

DEFAULT_RANGE: tuple[float, float] = (-128.0, 127.0)
"""LO..HI of an input that declares none: the paper's mean-subtracted 0..255."""


def norm_bound(value_range: tuple[float, float] | None) -> float:
    """B = 160·(HI−LO)/255: the paper's bound of 160 for 0..255 inputs, scaled to this range."""
    lo, hi = value_range or DEFAULT_RANGE
    return 160.0 * (hi - lo) / 255.0


def parse_kind(text: str) -> InputKind:
    """The kind a string names; ValueError listing the kinds for any other string."""
    try:
        return InputKind(text)
    except ValueError:
        raise ValueError(f"unknown kind {text!r}; use one of {', '.join(INPUT_KINDS)}") from None


def infer_kind(channels: int, has_time: bool, *, exact: bool = False) -> InputKind | None:
    """The kind an input most likely holds, from its channel count and whether it has a time axis.

    Over time, 2 channels are a flow video and 1 or 3 a video; without, 1 or 3 channels are
    an image and an even count is stacked flow (interleaved, the two-stream convention).
    Other counts fit no kind exactly: they are read as appearance (the importer must
    describe every graph), or give None when `exact` asks for a kind that fits.
    """
    if has_time:
        if channels == 2:
            return InputKind.FLOW_VIDEO
        return InputKind.VIDEO if channels in (1, 3) or not exact else None
    if channels in (1, 3):
        return InputKind.IMAGE
    if channels >= 2 and channels % 2 == 0:
        return InputKind.STACKED_FLOW
    return None if exact else InputKind.IMAGE
