"""Layers as the catalog describes them, and finding one by the name a user gives.

A layer is named by its ONNX tensor name; the name of the node that produces it is an
alias, so either finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, TypeVar

L = TypeVar("L")


@dataclass(frozen=True)
class Layer:
    """One intermediate tensor with a channel axis: what the importer catalogs and GetModel lists."""

    name: str
    node: str
    op_type: str
    shape: tuple[int, ...]
    axes: str
    """One letter per axis: N, C, T, H, W, or '?' where the axis has no single meaning."""
    channels: int
    inputs: tuple[str, ...]
    streams: str
    """appearance, motion or fusion: the kinds of input this layer depends on."""
    receptive_field: dict[str, dict[str, float]] = field(default_factory=dict)
    stride: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def channel_axis(self) -> int:
        return self.axes.index("C")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "node": self.node,
            "op_type": self.op_type,
            "shape": list(self.shape),
            "axes": self.axes,
            "channels": self.channels,
            "receptive_field": _plain(self.receptive_field),
            "stride": _plain(self.stride),
            "inputs": list(self.inputs),
            "streams": self.streams,
        }


def _names(layer: Any) -> tuple[str, str | None]:
    """(tensor name, producing node name) of a catalog entry: an object with `name`/`node` or a stored dict."""
    if isinstance(layer, Mapping):
        return layer["name"], layer.get("node")
    return layer.name, getattr(layer, "node", None)


def find_layer(layers: Iterable[L], name: str) -> L | None:
    """The first layer whose tensor name or producing node's name (the catalog's alias) is `name`, else None."""
    return next((layer for layer in layers if name in _names(layer)), None)


def _plain(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float | int]]:
    """Whole numbers as ints and the rest to 4 decimals: receptive fields and strides as people read them."""
    return {src: {l: int(v) if float(v).is_integer() else round(v, 4) for l, v in axes.items()} for src, axes in table.items()}
