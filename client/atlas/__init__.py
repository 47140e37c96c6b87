"""A browsable static site of every maximized unit: model page, layer pages, unit pages.

`write_atlas` takes what the service returns (the model catalog, result files, a
recording, per-unit analysis measures) and writes plain HTML with relative links, so
the folder opens from `file://` or any static server. The writer (numpy, matplotlib,
Pillow, PyAV) loads on first use, so the command line's parser can import
`kinetoscope.client.atlas.cli` cheaply.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_atlas"]


def __getattr__(name: str) -> Any:
    if name == "write_atlas":
        from .writer import write_atlas  # noqa: PLC0415

        return write_atlas
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
