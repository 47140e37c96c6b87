"""`kinetoscope render DIR/result.npz [--out DIR]`: a result file to PNG, GIF, MP4 and index.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from .gallery import render_gallery
from .media import DEFAULT_FPS
from .result import ResultError, load_result


def render_result(
    npz_path: str | Path,
    out_dir: str | Path | None = None,
    recording: Mapping[str, Any] | None = None,
    *,
    fps: float = DEFAULT_FPS,
) -> Path:
    """Renders every unit and setting of a result file; returns the path of `index.html`.

    Without `out_dir` the files go beside the result file, so a maximization folder
    holds its own gallery.
    """
    npz_path = Path(npz_path)
    out_dir = Path(out_dir) if out_dir is not None else npz_path.parent
    result = load_result(npz_path)
    return render_gallery(result, out_dir, recording, source=npz_path.name, fps=fps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kinetoscope render",
        description="Render a result.npz to PNG / GIF / MP4 and an index.html laid out like the paper's figures.",
    )
    parser.add_argument("result", type=Path, help="DIR/result.npz written by `kinetoscope maximize`")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the result's folder)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"frames per second of motion (default {DEFAULT_FPS:g})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the index path on success; a bad result file exits with status 2 and a reason."""
    args = build_parser().parse_args(argv)
    try:
        index = render_result(args.result, args.out, fps=args.fps)
    except ResultError as exc:
        print(f"kinetoscope render: {exc}", file=sys.stderr)
        return 2
    print(index)
    return 0
