"""Finding a layer by the name a user gives: its ONNX tensor name, or the name of the node that produces it."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, TypeVar

L = TypeVar("L")


def layer_names(layer: Any) -> tuple[str, str | None]:
    """(tensor name, producing node name) of a catalog entry: an object with `name`/`node` or a stored dict."""
    if isinstance(layer, Mapping):
        return layer["name"], layer.get("node")
    return layer.name, getattr(layer, "node", None)


def find_layer(layers: Iterable[L], name: str) -> L | None:
    """The first layer whose tensor name or producing node's name (the catalog's alias) is `name`, else None."""
    return next((layer for layer in layers if name in layer_names(layer)), None)
