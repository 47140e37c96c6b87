"""A browsable static site of every maximized unit: model page, layer pages, unit pages.

`write_atlas` takes what the service returns (the model catalog, result files, a
recording, per-unit analysis measures) and writes plain HTML with relative links, so
the folder opens from `file://` or any static server. matplotlib, Pillow and PyAV are
imported only while writing.
"""

from .writer import write_atlas

__all__ = ["write_atlas"]
