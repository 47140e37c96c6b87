"""Graph inputs: their declared shape, kind and value range (`NAME=1x3x224x224:image:-128..127`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Sequence

from .errors import InvalidModel

KINDS = ("image", "stacked_flow", "stacked_flow_planar", "video", "flow_video")
DEFAULT_RANGE = (-128.0, 127.0)

_SPEC = re.compile(
    r"^(?P<name>[^=]+)=(?P<shape>\d+(?:x\d+)*)"
    r"(?::(?P<kind>[a-z_]*))?"
    r"(?::(?P<lo>-?[\d.]+(?:e-?\d+)?)\.\.(?P<hi>-?[\d.]+(?:e-?\d+)?))?$"
)


@dataclass(frozen=True)
class InputSpec:
    """What the caller declares (or the importer infers) about one graph input.

    `shape` is in the graph's own layout; `layout` says where channels, time and
    space are in it ("NCHW", "NHWC", "NCTHW", "NTHWC", ...).
    """

    name: str
    shape: tuple[int, ...] | None = None
    kind: str | None = None
    value_range: tuple[float, float] | None = None
    layout: str | None = None
    inferred: tuple[str, ...] = field(default=(), compare=False)

    @property
    def norm_bound(self) -> float:
        """B = 160·(HI−LO)/255: the paper's bound scaled to this input's range."""
        lo, hi = self.value_range or DEFAULT_RANGE
        return 160.0 * (hi - lo) / 255.0

    def with_(self, **changes) -> "InputSpec":
        return replace(self, **changes)


def parse_input_spec(text: str) -> InputSpec:
    """Parse `NAME=1x3x224x224[:KIND[:LO..HI]]`, the CLI's --input syntax."""
    match = _SPEC.match(text.strip())
    if not match:
        raise InvalidModel(
            f"cannot read input declaration {text!r}; expected NAME=1x3x224x224[:KIND[:LO..HI]]",
            stage="inputs",
        )
    shape = tuple(int(d) for d in match["shape"].split("x"))
    kind = match["kind"] or None
    if kind is not None and kind not in KINDS:
        raise InvalidModel(f"input {match['name']!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}", stage="inputs")
    value_range = None
    if match["lo"] is not None:
        value_range = (float(match["lo"]), float(match["hi"]))
        if not value_range[0] < value_range[1]:
            raise InvalidModel(f"input {match['name']!r}: range {value_range} is empty", stage="inputs")
    return InputSpec(name=match["name"], shape=shape, kind=kind, value_range=value_range)


def as_specs(items: Sequence[InputSpec | str] | None) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    for item in items or ():
        spec = parse_input_spec(item) if isinstance(item, str) else item
        if spec.name in specs:
            raise InvalidModel(f"input {spec.name!r} is declared twice", stage="inputs")
        specs[spec.name] = spec
    return specs


def infer_kind(channels: int, has_time: bool, name: str) -> str:
    """Guess an input's kind from its channel count, time axis and name."""
    lowered = name.lower()
    if has_time:
        return "flow_video" if channels == 2 or "flow" in lowered else "video"
    if channels == 3 and "flow" not in lowered:
        return "image"
    if channels % 2 == 0:
        return "stacked_flow"
    return "image"
