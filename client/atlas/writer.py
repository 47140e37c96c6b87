"""`write_atlas`: the model page, one page per layer with units, one per unit, and their media.

Site layout (every link relative):

    index.html                      the model: inputs and the layer catalog
    layers/<layer>.html             thumbnails per γ and measures, sortable and filterable
    units/<layer>/c0003.html        videos per γ, top clips, charts, numbers
    media/<layer>/c0003_v00_rgb.png optimized inputs (PNG; GIF and MP4 for motion), charts
    media/clips/                    top recorded clips, when the clips are given
    assets/atlas.css, atlas.js
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kinetoscope.common import SEQUENCE_KINDS, sample_layout

from ..render.display import display_frames
from ..render.gallery import describe_unit
from ..render.media import DEFAULT_FPS, write_gif, write_mp4, write_png
from ..render.result import Result
from ..types import LayerInfo, ModelInfo, Recording, Target
from . import charts
from .assets import write_assets
from .evolution import LayerEvolution
from .motion import UnitMotion, unit_motion
from .pages import (MODEL_PAGE, ClipMedia, Tile, UnitMedia, UnitRow, ViewMedia, layer_page, layer_page_path,
                    model_page, unit_page, unit_page_path)
from .units import UnitEntry, collect_units, recorded, slugs

MEDIA_DIR = "media"
TOP_CLIPS = 5


def write_atlas(
    out_dir: str | Path,
    model_info: ModelInfo,
    layers: Sequence[LayerInfo],
    results: Sequence[Result],
    recording: Recording | None = None,
    analysis: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    *,
    clips: Mapping[str, np.ndarray] | None = None,
    fps: float = DEFAULT_FPS,
    evolution: Mapping[str, LayerEvolution] | None = None,
) -> Path:
    """Writes the atlas into `out_dir` and returns the path of its `index.html`.

    `layers` is the model's catalog (`Client.get_model`); `results` are loaded result
    files, whose units are matched to layers by the target each carries; `analysis` is
    the per-unit measures document (every measure optional); `clips` ({input: [N, ...]},
    the arrays the recording was made from) adds thumbnails of each unit's top clips;
    `evolution` (`checkpoint_evolution` of several checkpoints' results) adds its curves
    to the model page.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"cannot write the atlas into {out}: it is a file")
    if analysis is not None and not isinstance(analysis, Mapping):
        raise ValueError("the analysis must be a JSON object with a 'layers' mapping")
    (out / "layers").mkdir(parents=True, exist_ok=True)
    write_assets(out)
    names = list(class_names or model_info.class_names or next((r.class_names for r in results if r.class_names), ()) or ())
    catalog = {layer.name: layer for layer in layers}
    collected = collect_units(list(catalog), results, analysis)
    layer_slugs = slugs(list(collected.layers))
    clip_cache: dict[tuple[int, str], str] = {}
    layer_pages: dict[str, tuple[str, int]] = {}

    for layer_name, entries in collected.layers.items():
        slug = layer_slugs[layer_name]
        (out / MEDIA_DIR / slug).mkdir(parents=True, exist_ok=True)
        (out / "units" / slug).mkdir(parents=True, exist_ok=True)
        rows = [_unit_row(entry, slug, results, recording, analysis_only=not entry.views, out=out, names=names,
                          model_info=model_info, clips=clips, clip_cache=clip_cache, fps=fps) for entry in entries]
        page = layer_page_path(slug)
        with_pages = [row for row in rows if row.page]
        for i, row in enumerate(with_pages):
            previous = with_pages[i - 1] if i else None
            following = with_pages[i + 1] if i + 1 < len(with_pages) else None
            text = unit_page(row, catalog[layer_name], page, names, previous, following)
            (out / row.page).write_text(text, encoding="utf-8")
        settings = sorted({(v.gamma, v.kappa) for e in entries for v in e.views})
        inputs = list(dict.fromkeys(t.input for r in rows for vm in r.media.views for t in vm.tiles))
        (out / page).write_text(layer_page(catalog[layer_name], rows, settings, names, slug, inputs), encoding="utf-8")
        layer_pages[layer_name] = (page, len(with_pages))

    notes = []
    if collected.skipped_without_target:
        notes.append(f"{collected.skipped_without_target} maximized unit(s) are not shown: a sum of terms, or a "
                     "result file written before results carried targets.")
    if collected.skipped_unknown_layer:
        notes.append(f"{collected.skipped_unknown_layer} maximized unit(s) are not shown: they name layers this "
                     "model does not have (results of another model?).")
    evolution_figure = _evolution_chart(out, evolution) if evolution else None
    index = out / MODEL_PAGE
    index.write_text(model_page(model_info, layers, layer_pages, names, notes, evolution_figure), encoding="utf-8")
    return index


def _evolution_chart(out: Path, found: Mapping[str, LayerEvolution]) -> tuple[str, str]:
    """The model page's curves: per layer, input and γ, the means over units of change and temporal variation."""
    curves = []
    checkpoints: tuple[str, ...] = ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an image input's all-NaN variation
        for layer in found.values():
            checkpoints = layer.checkpoints
            for name, measures in layer.inputs.items():
                for s, (_, gamma) in enumerate(layer.settings):
                    curves.append((f"{layer.layer} · {name} · γ={gamma:g}", np.nanmean(measures.change[:, :, s], axis=1),
                                   np.nanmean(measures.variation[:, :, s], axis=1)))
    (out / MEDIA_DIR).mkdir(parents=True, exist_ok=True)
    path = f"{MEDIA_DIR}/evolution.png"
    charts.evolution_chart(out / path, checkpoints, curves)
    return path, " → ".join(checkpoints)


def _unit_row(entry: UnitEntry, slug: str, results: Sequence[Result], recording: Recording | None, *,
              analysis_only: bool, out: Path, names: Sequence[str], model_info: ModelInfo,
              clips: Mapping[str, np.ndarray] | None, clip_cache: dict[tuple[int, str], str], fps: float) -> UnitRow:
    """A unit's media and charts, written; a unit known only from the analysis gets a table row and no page."""
    stats = recorded(recording, entry.layer, entry.channel)
    kind = "logit" if analysis_only and entry.layer in model_info.outputs else entry.kind
    label = entry.label or f"{entry.layer} · {kind} {entry.channel}"
    heading, class_name = describe_unit(label, Target(kind, entry.layer, entry.channel, entry.position), names)
    if analysis_only:
        return UnitRow(entry, None, UnitMedia(), stats, heading, class_name)
    base = f"{MEDIA_DIR}/{slug}/{entry.stem}"
    media = UnitMedia(views=[_view_media(results[v.result], v, k, out, base, fps) for k, v in enumerate(entry.views)])
    media.class_chart = _class_chart(out, base, entry.measures, stats, names)
    media.speed_chart = _speed_chart(out, base, entry.measures)
    motion = unit_motion(entry, results)
    media.motion_chart = _motion_chart(out, base, motion)
    if stats is not None:
        media.clips = _clips(out, stats, clips, {i.name: i for i in model_info.inputs}, clip_cache, fps)
    return UnitRow(entry, unit_page_path(slug, entry), media, stats, heading, class_name, motion)


def _input_stem(name: str) -> str:
    return slugs([name])[name]


def _view_media(result: Result, view, number: int, out: Path, base: str, fps: float) -> ViewMedia:
    """Writes one view's inputs: PNG for images; GIF (thumbnail) and H.264 MP4 for sequences."""
    tiles = []
    for i, spec in enumerate(result.inputs):
        if not result.optimized[view.unit, view.setting, i]:
            tiles.append(Tile(spec.name, "none"))
            continue
        frames = display_frames(result.arrays[spec.name][view.unit, view.setting], spec.kind, spec.layout)
        stem = f"{base}_v{number:02d}_{_input_stem(spec.name)}"
        if spec.kind in SEQUENCE_KINDS:
            write_gif(out / f"{stem}.gif", frames, fps)
            write_mp4(out / f"{stem}.mp4", frames, fps)
            tiles.append(Tile(spec.name, "video", f"{stem}.gif", f"{stem}.mp4"))
        else:
            write_png(out / f"{stem}.png", frames[0])
            tiles.append(Tile(spec.name, "image", f"{stem}.png", f"{stem}.png"))
    return ViewMedia(view, tuple(tiles))


def _vector(value: Any) -> list[float] | None:
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) and all(
            isinstance(v, (int, float, np.number)) or v is None for v in value):
        return [float("nan") if v is None else float(v) for v in value]
    return None


def _class_chart(out: Path, base: str, measures: Mapping[str, Any], stats, names: Sequence[str]) -> str | None:
    maxima, means = _vector(measures.get("class_max")), _vector(measures.get("class_mean"))
    if maxima is None and means is None and stats is not None and stats.class_max is not None and stats.class_max.size:
        maxima = stats.class_max.tolist()
    if maxima is None and means is None:
        return None
    path = f"{base}_classes.png"
    charts.class_chart(out / path, maxima, means, names)
    return path


def _speed_chart(out: Path, base: str, measures: Mapping[str, Any]) -> str | None:
    speed = measures.get("speed")
    if not isinstance(speed, Mapping):
        return None
    speeds, curve = _vector(speed.get("speeds")), _vector(speed.get("curve"))
    if speeds is None or curve is None or len(speeds) != len(curve) or len(speeds) < 2:
        return None
    preferred = speed.get("preferred")
    path = f"{base}_speed.png"
    charts.speed_chart(out / path, speeds, curve, float(preferred) if isinstance(preferred, (int, float)) else None)
    return path


def _motion_chart(out: Path, base: str, motion: UnitMotion | None) -> str | None:
    if motion is None:
        return None
    path = f"{base}_motion.png"
    measured = motion.measured
    charts.motion_chart(out / path, motion.gammas, measured.magnitude, measured.direction, measured.coherence)
    return path


def _clips(out: Path, stats, clips: Mapping[str, np.ndarray] | None, specs, cache: dict[tuple[int, str], str],
           fps: float) -> list[ClipMedia]:
    """The unit's top clips: ids and values always; thumbnails (written once per clip) when the clips are given."""
    shown = []
    for rank, (clip_id, value) in enumerate(zip(stats.top_ids[:TOP_CLIPS], stats.top_values[:TOP_CLIPS]), start=1):
        pictures: list[str] = []
        index = stats.top_index[rank - 1] if rank - 1 < len(stats.top_index) else -1
        for name, array in (clips or {}).items():
            spec = specs.get(name)
            if spec is None or not 0 <= index < len(array):
                continue
            if (index, name) not in cache:
                frames = display_frames(np.asarray(array[index]), spec.kind, sample_layout(spec.layout))
                (out / MEDIA_DIR / "clips").mkdir(parents=True, exist_ok=True)
                sequence = spec.kind in SEQUENCE_KINDS
                path = f"{MEDIA_DIR}/clips/clip{index:05d}_{_input_stem(name)}.{'gif' if sequence else 'png'}"
                (write_gif(out / path, frames, fps) if sequence else write_png(out / path, frames[0]))
                cache[(index, name)] = path
            pictures.append(cache[(index, name)])
        shown.append(ClipMedia(rank, clip_id, value, tuple(pictures)))
    return shown
