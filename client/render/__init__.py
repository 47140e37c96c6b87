"""Rendering of maximization results: display scaling, media files and the HTML gallery.

Uses numpy, Pillow and PyAV only (the last two imported when a file is written), so
rendering runs on a machine without torch.
"""

from .cli import main, render_result
from .display import display_frames, flow_fields, flow_to_rgb, minmax_to_uint8
from .example import make_example_result
from .gallery import render_gallery
from .media import write_gif, write_mp4, write_png, write_strip
from .result import InputSpec, Result, ResultError, load_result

__all__ = [
    "InputSpec", "Result", "ResultError", "display_frames", "flow_fields", "flow_to_rgb", "load_result", "main",
    "make_example_result", "minmax_to_uint8", "render_gallery", "render_result", "write_gif", "write_mp4",
    "write_png", "write_strip",
]
