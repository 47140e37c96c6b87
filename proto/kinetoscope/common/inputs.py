"""One graph input as client, service and engine describe it: name, shape, kind, layout, value range."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .kinds import DEFAULT_RANGE, norm_bound
from .layout import sample_layout


@dataclass(frozen=True)
class InputSpec:
    """What a caller declares, or the importer infers, about one graph input.

    `shape` is in the graph's own layout, batch included; `layout` says where batch,
    channels, time and space are in it ("NCHW", "NHWC", "NCTHW", "NTHWC", ...). Where a
    spec describes one sample (the inputs of a result file), both leave the batch out. A
    declaration may leave any field but the name to the importer; a described input
    has them all. `inferred` names the fields the importer guessed.
    """

    name: str
    shape: tuple[int, ...] | None = None
    kind: str | None = None
    value_range: tuple[float, float] | None = None
    layout: str | None = None
    inferred: tuple[str, ...] = field(default=(), compare=False)

    @property
    def range_or_default(self) -> tuple[float, float]:
        """The declared range, or the default -128..127."""
        return self.value_range or DEFAULT_RANGE

    @property
    def norm_bound(self) -> float:
        """B = 160·(HI−LO)/255: the paper's bound scaled to this input's range."""
        return norm_bound(self.value_range)

    @property
    def sample_layout(self) -> str:
        """The layout of one sample: no batch axis, time spelled T."""
        if self.layout is None:
            raise ValueError(f"input {self.name!r} has no layout yet")
        return sample_layout(self.layout)

    def to_json(self) -> dict:
        """A described input as `kinetoscope import --json` and `models --json` print it."""
        return {"name": self.name, "shape": list(self.shape or ()), "kind": self.kind, "layout": self.layout,
                "range": list(self.range_or_default), "inferred": list(self.inferred)}

    def with_(self, **changes) -> "InputSpec":
        return replace(self, **changes)
