"""An `index.html` laid out like the paper's figures: one row per unit, one column per setting.

Each cell shows what maximizes the unit under one (γ, κ) setting: the appearance as
a PNG and the motion both as a <video> (H.264 MP4, sharp colours) and as a GIF (plays
anywhere a GIF does, e.g. pasted into notes). With a recording, a last column shows
the unit's top recorded clips and its maximum activity per class (paper, Fig. 10, 11).

`recording` is a plain mapping, so any recorder can feed it:

    {
        "class_names": ["Archery", ...],            # optional; else the result's
        "units": {                                    # keyed by unit string or index
            "Channel('conv5_fusion', 3)": {
                "top_clips": [clip, ...],             # clip: one sample array, or {input name: array}
                "top_labels": ["clip 17", ...],       # optional captions
                "class_max": [0.0, 12.5, ...],        # one value per class
                "kind": "image", "layout": "NCHW",    # optional, for bare arrays
            },
        },
    }
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kinetoscope.common import SEQUENCE_KINDS, InputSpec, infer_layout, sample_layout

from .display import display_frames
from .media import DEFAULT_FPS, MIN_SIDE, upscale_factor, write_gif, write_mp4, write_png, write_strip
from ..types import Target
from .result import Result, kind_from_shape

MEDIA_DIR = "media"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Tile:
    """One picture in a cell: `media` is image, gif, video or none (input not connected)."""

    caption: str
    media: str
    src: str | None = None
    size: tuple[int, int] = (MIN_SIDE, MIN_SIDE)  # displayed width, height in pixels
    link: str | None = None  # e.g. the frame strip of a clip


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("_") or "input"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def describe_unit(unit: str, target: Target | None, class_names: Sequence[str] | None) -> tuple[str, str | None]:
    """A heading for a unit from what it maximized and, for a logit with known classes, the class name.

    A unit without a single structured target (a sum of terms, or a file written before
    results carried targets) keeps its display label as the heading.
    """
    if target is None:
        return unit, None
    if target.kind == "logit":
        index = target.channel
        name = class_names[index] if class_names and 0 <= index < len(class_names) else None
        return f"{target.layer} · class {index}", name
    return f"{target.layer} · {target.kind} {target.channel}", None


def describe_setting(gamma: float, kappa: float) -> str:
    """Names the regularizer case of section 3.3: temporally free, isotropic or anisotropic."""
    if gamma == 0:
        return f"γ = 0, κ = {_fmt(kappa)}: temporal variation unconstrained (fastest)"
    if gamma == kappa:
        return f"κ = γ = {_fmt(kappa)}: isotropic spacetime regularization"
    pace = "slower" if gamma > kappa else "faster"
    return f"γ = {_fmt(gamma)}, κ = {_fmt(kappa)}: anisotropic, {pace} than isotropic"


def _displayed_size(frames: np.ndarray) -> tuple[int, int]:
    height, width = frames.shape[1:3]
    factor = upscale_factor(height, width)
    return width * factor, height * factor


def _sample_tiles(frames: np.ndarray, spec: InputSpec, out_dir: Path, stem: str, fps: float) -> list[Tile]:
    """Writes one sample's media and returns the tiles that show it."""
    size = _displayed_size(frames)
    if spec.kind not in SEQUENCE_KINDS:
        png = f"{MEDIA_DIR}/{stem}.png"
        write_png(out_dir / png, frames[0])
        return [Tile(spec.name, "image", png, size)]
    mp4, gif, strip = (f"{MEDIA_DIR}/{stem}.{ext}" for ext in ("mp4", "gif", "strip.png"))
    write_mp4(out_dir / mp4, frames, fps)
    write_gif(out_dir / gif, frames, fps)
    write_strip(out_dir / strip, frames)
    return [
        Tile(f"{spec.name} · mp4", "video", mp4, size, strip),
        Tile(f"{spec.name} · gif", "gif", gif, size, strip),
    ]


def _unique_stems(names: Sequence[str]) -> list[str]:
    """File-name-safe input names; inputs whose safe names collide get their position appended."""
    stems = [_safe(name) for name in names]
    return [stem if stems.count(stem) == 1 else f"{stem}_{i}" for i, stem in enumerate(stems)]


def _setting_cell(result: Result, unit: int, setting: int, out_dir: Path, stems: Sequence[str], fps: float) -> str:
    """One unit under one setting: every input's media, then the activation reached."""
    tiles: list[Tile] = []
    for i, spec in enumerate(result.inputs):
        if not result.optimized[unit, setting, i]:
            tiles.append(Tile(spec.name, "none"))
            continue
        frames = display_frames(result.arrays[spec.name][unit, setting], spec.kind, spec.layout)
        tiles += _sample_tiles(frames, spec, out_dir, f"u{unit:03d}_s{setting:02d}_{stems[i]}", fps)
    return (
        f'<td class="cell" data-unit="{unit}" data-setting="{setting}"><div class="tiles">'
        f'{"".join(_tile_html(t) for t in tiles)}</div>'
        f'<div class="activation">activation {_fmt(float(result.activation[unit, setting]))}</div></td>'
    )


def _tile_html(tile: Tile) -> str:
    width, height = tile.size
    caption = html.escape(tile.caption)
    if tile.link:
        caption = f'<a href="{html.escape(tile.link)}" title="all frames">{caption}</a>'
    src = html.escape(tile.src or "")
    dims = f'width="{width}" height="{height}"'
    if tile.media == "video":
        body = f'<video src="{src}" {dims} autoplay muted loop playsinline preload="auto"></video>'
    elif tile.media in ("image", "gif"):
        body = f'<img src="{src}" {dims} alt="{html.escape(tile.caption)}">'
    else:
        body = '<div class="absent" title="this input does not feed the unit">not connected</div>'
    return f'<figure class="tile {tile.media}">{body}<figcaption>{caption}</figcaption></figure>'


def bar_chart_svg(values: Sequence[float], class_names: Sequence[str] | None, width: int = 180, height: int = 60) -> str:
    """Maximum activity per class as an inline SVG bar chart; the strongest classes are named below it."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1))
    count = len(values)
    if count == 0:
        return '<p class="muted">no classes recorded</p>'
    names = [str(n) for n in class_names] if class_names is not None and len(class_names) == count else [
        f"class {i}" for i in range(count)
    ]
    top = float(max(values.max(), 0.0))
    bottom = float(min(values.min(), 0.0))
    span = (top - bottom) or 1.0
    baseline = height * top / span
    step = width / count
    best = int(np.argmax(values))
    bars = []
    for index, value in enumerate(values):
        bar_height = abs(value) * height / span
        y = baseline - bar_height if value >= 0 else baseline
        fill = "#d62728" if index == best else "#4c72b0"
        bars.append(
            f'<rect x="{index * step:.2f}" y="{y:.2f}" width="{max(step * 0.85, 0.5):.2f}" '
            f'height="{max(bar_height, 0.5):.2f}" fill="{fill}"><title>{html.escape(names[index])}: '
            f"{_fmt(value)}</title></rect>"
        )
    ranked = np.argsort(-values)[:3]
    legend = ", ".join(f"{html.escape(names[i])} {_fmt(float(values[i]))}" for i in ranked)
    return (
        f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="maximum activity per class">'
        f'<line x1="0" x2="{width}" y1="{baseline:.2f}" y2="{baseline:.2f}" stroke="#999" stroke-width="0.5"/>'
        f'{"".join(bars)}</svg><p class="top-classes">max per class: {legend}</p>'
    )


def _recorded_entry(recording: Mapping[str, Any], unit: str, index: int) -> Mapping[str, Any] | None:
    units = recording.get("units", {})
    for key in (unit, index, str(index)):
        if key in units:
            return units[key]
    return None


def _clip_frames(array: Any, spec: InputSpec | None, entry: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    array = np.asarray(array)
    if spec is not None and array.ndim == len(spec.layout):
        return display_frames(array, spec.kind, spec.layout), spec.kind
    layout = sample_layout(entry["layout"]) if entry.get("layout") else infer_layout(array.shape)
    kind = entry.get("kind") or kind_from_shape(array.shape, layout)
    return display_frames(array, kind, layout), kind


def _recorded_html(entry: Mapping[str, Any] | None, result: Result, class_names: Sequence[str] | None,
                   out_dir: Path, unit_index: int) -> str:
    """The unit's top recorded clips (thumbnails) and its per-class maxima (bar chart)."""
    if entry is None:
        return '<p class="muted">not in the recording</p>'
    specs = {spec.name: spec for spec in result.inputs}
    labels = list(entry.get("top_labels", []))
    clips_html = []
    for rank, clip in enumerate(entry.get("top_clips", [])):
        parts = clip.items() if isinstance(clip, Mapping) else [(None, clip)]
        pictures = []
        for name, array in parts:
            spec = specs.get(name) if name is not None else (result.inputs[0] if len(result.inputs) == 1 else None)
            frames, kind = _clip_frames(array, spec, entry)
            stem = f"u{unit_index:03d}_top{rank:02d}" + (f"_{_safe(name)}" if name else "")
            src = f"{MEDIA_DIR}/{stem}.{'gif' if kind in SEQUENCE_KINDS else 'png'}"
            (write_gif if kind in SEQUENCE_KINDS else write_png)(out_dir / src, frames)
            alt = html.escape(f"top clip {rank + 1}" + (f" {name}" if name else ""))
            pictures.append(f'<img src="{html.escape(src)}" alt="{alt}">')
        label = html.escape(str(labels[rank]) if rank < len(labels) else f"#{rank + 1}")
        clips_html.append(f'<figure class="clip">{"".join(pictures)}<figcaption>{label}</figcaption></figure>')
    parts_html = ['<div class="clips">' + "".join(clips_html) + "</div>"] if clips_html else []
    if "class_max" in entry:
        parts_html.append(bar_chart_svg(entry["class_max"], class_names))
    return "".join(parts_html) or '<p class="muted">nothing recorded for this unit</p>'


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; }
header p, header li { margin: 2px 0; color: #444; }
.key span { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; margin-right: 4px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #ddd; padding: 6px; vertical-align: top; background: #fff; }
thead th { position: sticky; top: 0; background: #f0f0f0; font-weight: 600; }
th.unit { text-align: left; min-width: 140px; max-width: 200px; }
th.unit code { display: block; font-size: 11px; font-weight: normal; color: #666; word-break: break-all; margin-top: 4px; }
.class-name { color: #b22222; font-weight: 600; }
.tiles { display: flex; gap: 6px; }
figure { margin: 0; }
table.gallery { --tile: clamp(56px, calc((100vw - var(--reserved)) / var(--tiles) - 12px), 160px); }
figure.tile img, figure.tile video, .absent { width: var(--tile); height: auto; display: block;
  image-rendering: pixelated; background: #000; }
.absent { aspect-ratio: 1; background: #eee; color: #999; font-size: 11px; display: flex; text-align: center;
  align-items: center; justify-content: center; }
figcaption { font-size: 11px; color: #555; text-align: center; }
figure.tile figcaption { max-width: var(--tile); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.activation { font-size: 12px; color: #333; margin-top: 4px; }
td.recorded { width: 180px; }
.bars { display: block; width: 100%; height: auto; margin-top: 6px; }
.clips { display: flex; flex-wrap: wrap; gap: 4px; }
.clips img { width: 40px; height: auto; image-rendering: pixelated; display: block; }
.clip { display: flex; flex-direction: column; }
.clip > img + img { margin-top: 2px; }
.muted { color: #999; }
.top-classes { font-size: 11px; color: #444; margin: 2px 0 0; }
"""


def _header_html(result: Result, title: str, source: str | None) -> str:
    inputs = ", ".join(
        f"<code>{html.escape(s.name)}</code> ({html.escape(s.kind)}, {'×'.join(map(str, result.arrays[s.name].shape[2:]))})"
        for s in result.inputs
    )
    settings = "".join(
        f"<li>column {i + 1}: {html.escape(describe_setting(float(g), float(k)))}</li>"
        for i, (g, k) in enumerate(zip(result.gammas, result.kappas))
    )
    origin = f" from <code>{html.escape(source)}</code>" if source else ""
    return (
        f"<header><h1>{html.escape(title)}</h1>"
        f"<p>{result.n_units} unit(s) × {result.n_settings} regularizer setting(s){origin}. Inputs: {inputs}.</p>"
        f"<p>Each row is one unit; each column one setting of the total-variation regularizer: "
        f"κ penalizes spatial variation, γ temporal variation (larger γ: slower motion).</p><ul>{settings}</ul>"
        f'<p class="key">Motion colours: <span style="background:#c00">R</span>horizontal (rightward high) '
        f'<span style="background:#080">G</span>vertical (downward high) '
        f'<span style="background:#00c">B</span>magnitude. '
        f"Every input is min-max scaled over its whole sequence, not per frame.</p></header>"
    )


def render_gallery(
    result: Result,
    out_dir: str | Path,
    recording: Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
    source: str | None = None,
    fps: float = DEFAULT_FPS,
) -> Path:
    """Writes media under `out_dir/media/` and `out_dir/index.html`; returns the index path."""
    out_dir = Path(out_dir)
    (out_dir / MEDIA_DIR).mkdir(parents=True, exist_ok=True)
    class_names = result.class_names
    recorded_names = class_names
    if recording is not None and recording.get("class_names") is not None:
        recorded_names = [str(n) for n in recording["class_names"]]
    layers = sorted({t.layer for u in range(result.n_units) if (t := result.target(u))})
    title = title or "kinetoscope · " + (", ".join(layers) if layers else "maximization result")

    head_cells = "".join(
        f'<th title="{html.escape(describe_setting(float(g), float(k)))}">γ = {_fmt(float(g))} · κ = {_fmt(float(k))}</th>'
        for g, k in zip(result.gammas, result.kappas)
    )
    if recording is not None:
        head_cells += "<th>recorded: top clips · max per class</th>"
    # tiles across one row, so that tiles shrink to fit the window (56 to 160 px each)
    tiles_per_row = result.n_settings * sum(2 if s.kind in SEQUENCE_KINDS else 1 for s in result.inputs)
    reserved = 200 + (200 if recording is not None else 0)  # unit column, recorded column
    stems = _unique_stems([spec.name for spec in result.inputs])
    rows = []
    for u, unit in enumerate(result.units):
        heading, class_name = describe_unit(unit, result.target(u), class_names)
        class_html = f'<div class="class-name">{html.escape(class_name)}</div>' if class_name else ""
        cells = [f'<th class="unit" scope="row">{html.escape(heading)}{class_html}<code>{html.escape(unit)}</code></th>']
        cells += [_setting_cell(result, u, s, out_dir, stems, fps) for s in range(result.n_settings)]
        if recording is not None:
            entry = _recorded_entry(recording, unit, u)
            cells.append(f'<td class="recorded">{_recorded_html(entry, result, recorded_names, out_dir, u)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")

    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{_header_html(result, title, source)}"
        f'<table class="gallery" style="--tiles: {max(1, tiles_per_row)}; --reserved: {reserved}px"><thead><tr><th class="unit">unit</th>{head_cells}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )
    index = out_dir / "index.html"
    index.write_text(document, encoding="utf-8")
    return index


__all__ = ["Tile", "bar_chart_svg", "describe_setting", "describe_unit", "render_gallery"]
