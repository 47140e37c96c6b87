"""The three kinds of page as HTML text: the model, a layer, a unit.

Pages get everything already written to disk (media paths relative to the site root)
and only lay it out; `writer` decides what exists. Links are relative, with `../`
for the depth of the page, so the site works wherever the folder is opened.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..render.gallery import describe_setting
from ..types import LayerInfo, ModelInfo
from .assets import SCRIPT_FILE, STYLE_FILE
from .motion import UnitMotion
from .units import Recorded, UnitEntry, View

MODEL_PAGE = "index.html"


def layer_page_path(slug: str) -> str:
    return f"layers/{slug}.html"


def unit_page_path(slug: str, entry: UnitEntry) -> str:
    return f"units/{slug}/{entry.stem}.html"


@dataclass(frozen=True)
class Tile:
    """One input of one view: `media` is image, video or none (the input does not feed the unit)."""

    input: str
    media: str
    thumb: str | None = None  # PNG or GIF, for the layer table
    full: str | None = None  # PNG or MP4, for the unit page


@dataclass(frozen=True)
class ViewMedia:
    view: View
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class ClipMedia:
    """One top recorded clip: its id and value, and thumbnails when the clips were given."""

    rank: int
    clip_id: str
    value: float
    pictures: tuple[str, ...] = ()


@dataclass
class UnitMedia:
    """Everything written for a unit, as site-root-relative paths."""

    views: list[ViewMedia] = field(default_factory=list)
    class_chart: str | None = None
    speed_chart: str | None = None
    motion_chart: str | None = None
    clips: list[ClipMedia] = field(default_factory=list)


@dataclass(frozen=True)
class UnitRow:
    """A unit as its layer page and unit page see it."""

    entry: UnitEntry
    page: str | None  # None: known only from the analysis, a table row without a page
    media: UnitMedia
    recorded: Recorded | None
    heading: str
    class_name: str | None
    motion: UnitMotion | None = None  # a flow input's motion across γ, when it feeds the unit at two or more γ


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers to 4 significant digits; NaN and None to an empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) or hasattr(value, "__float__") and not isinstance(value, str):
        number = float(value)
        if math.isnan(number):
            return ""
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.4g}"
    return str(value)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def document(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{esc(title)}</title>'
        f'<link rel="stylesheet" href="{up}{STYLE_FILE}"><script src="{up}{SCRIPT_FILE}" defer></script>'
        f"</head><body>{body}</body></html>\n"
    )


def _crumbs(depth: int, *parts: tuple[str, str | None]) -> str:
    up = "../" * depth
    links = [f'<a href="{up}{MODEL_PAGE}">model</a>']
    for text, href in parts:
        links.append(f'<a href="{up}{esc(href)}">{esc(text)}</a>' if href else f"<span>{esc(text)}</span>")
    return f'<nav class="crumbs">{" › ".join(links)}</nav>'


def _axes(table: Mapping[str, float]) -> tuple[str, str, float]:
    """An RF or stride per input as text (T×H×W), the axes it spans, and a sort value (the product)."""
    order = [a for a in ("T", "H", "W") if a in table] + [a for a in table if a not in ("T", "H", "W")]
    text = "×".join(fmt(table[a]) for a in order)
    return text, "×".join(order), math.prod(float(table[a]) for a in order) if order else 0.0


def _filter_controls(table_id: str, labels: Sequence[str], what: str) -> str:
    options = "".join(f'<option value="{esc(label)}">{esc(label)}</option>' for label in labels)
    menu = (f'<label>{esc(what)} <select data-filter="{table_id}"><option value="">all</option>{options}</select></label>'
            if labels else "")
    return (f'<div class="controls"><input type="search" placeholder="filter rows" aria-label="filter rows" '
            f'data-filter="{table_id}">{menu}<span class="muted" data-count="{table_id}"></span></div>')


# -- the model page


def model_page(info: ModelInfo, layers: Sequence[LayerInfo], layer_pages: Mapping[str, tuple[str, int]],
               class_names: Sequence[str], notes: Sequence[str], evolution: tuple[str, str] | None = None) -> str:
    """The catalog as a sortable table; layers with a page link to it. `layer_pages`: name → (path, units).

    `evolution` is (chart path, checkpoint names) when the atlas was given several checkpoints."""
    inputs = [i.name for i in info.inputs]
    head = ['<th data-type="text">layer</th>', '<th data-type="text">op</th>', '<th data-type="text">shape</th>',
            '<th data-type="number">channels</th>']
    head += [f'<th data-type="number">RF {esc(n)}</th>' for n in inputs]
    head += [f'<th data-type="number">stride {esc(n)}</th>' for n in inputs]
    head += ['<th data-type="text">streams</th>', '<th data-type="number">units shown</th>']
    rows = []
    for layer in layers:
        page = layer_pages.get(layer.name)
        name = f'<a href="{esc(page[0])}">{esc(layer.name)}</a>' if page else esc(layer.name)
        cells = [f"<td>{name}</td>", f"<td>{esc(layer.op_type)}</td>",
                 f"<td>{esc('×'.join(map(str, layer.shape)))}</td>", f'<td class="num">{layer.channels}</td>']
        for table in (layer.receptive_field, layer.stride):
            for n in inputs:
                if n in table:
                    text, axes, value = _axes(table[n])
                    cells.append(f'<td class="num" data-value="{value:g}" title="{esc(axes)}">{esc(text)}</td>')
                else:
                    cells.append('<td class="num" title="this input does not reach the layer"></td>')
        cells.append(f"<td>{esc(layer.streams)}</td>")
        cells.append(f'<td class="num">{page[1] if page else ""}</td>')
        rows.append(f'<tr data-labels="{esc(layer.streams)}">{"".join(cells)}</tr>')
    input_rows = "".join(
        f"<tr><td>{esc(i.name)}</td><td>{esc('×'.join(map(str, i.shape)))}</td><td>{esc(i.kind)}</td>"
        f"<td>{esc(i.layout)}</td><td>{fmt(i.value_range[0])} … {fmt(i.value_range[1])}</td></tr>"
        for i in info.inputs
    )
    streams = sorted({layer.streams for layer in layers if layer.streams})
    classes = (f"<p>{len(class_names)} classes: {esc(', '.join(class_names))}</p>" if class_names else "")
    note_html = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    body = (
        f"<header><h1>{esc(info.name)}</h1><p class=\"muted\">model {esc(info.id)} · {info.layer_count} layers · "
        f"parity vs onnxruntime: max rel err {info.max_rel_err:.1e}</p>{classes}</header>"
        f"<h2>Inputs</h2><table><thead><tr><th>input</th><th>shape</th><th>kind</th><th>layout</th><th>range</th>"
        f"</tr></thead><tbody>{input_rows}</tbody></table>"
        f"<h2>Layers</h2><p>Receptive field (RF) and stride per input, in input pixels and frames (T×H×W). "
        f"Streams: which inputs a layer sees (appearance, motion, or their fusion). Click a header to sort; "
        f"{len(layer_pages)} layer(s) have a page.</p>{note_html}"
        f"{_filter_controls('catalog', streams, 'streams')}"
        f'<table id="catalog" class="sortable"><thead><tr>{"".join(head)}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
    )
    if evolution is not None:
        chart, checkpoints = evolution
        body += (f'<h2 id="evolution">Across checkpoints</h2><p>How the maximized units\' optimized inputs change from '
                 f"one checkpoint to the next ({esc(checkpoints)}), and their temporal variation at each: means over "
                 f"the units every checkpoint holds, per layer, input and γ (docs/ANALYSIS.md, the paper's Fig. 9).</p>"
                 f'<figure><img src="{esc(chart)}" alt="change and temporal variation across checkpoints"></figure>')
    return document(f"{info.name} · kinetoscope atlas", body, 0)


# -- the layer page

_KNOWN = ("channel", "selectivity", "top_class", "label", "stream_reliance", "reliance_label", "class_mean",
          "class_max", "speed")


@dataclass(frozen=True)
class Column:
    header: str
    kind: str  # number or text
    title: str = ""


def _present(rows: Sequence[UnitRow], key: str) -> bool:
    return any(key in row.entry.measures for row in rows)


def _extra_keys(rows: Sequence[UnitRow]) -> list[str]:
    """Measures beyond the known ones that are plain numbers or strings: each gets a column."""
    keys: dict[str, None] = {}
    for row in rows:
        for key, value in row.entry.measures.items():
            if key not in _KNOWN and isinstance(value, (int, float, str)) and not isinstance(value, bool):
                keys[key] = None
    return list(keys)


def _class_label(index: Any, class_names: Sequence[str]) -> str:
    if isinstance(index, (int, float)) and not isinstance(index, bool) and float(index).is_integer():
        i = int(index)
        return f"{i} · {class_names[i]}" if 0 <= i < len(class_names) else str(i)
    return fmt(index)


def layer_page(layer: LayerInfo, rows: Sequence[UnitRow], settings: Sequence[tuple[float, float]],
               class_names: Sequence[str], slug: str, inputs: Sequence[str]) -> str:
    """Every unit's thumbnails per setting and its measures in one sortable, filterable table."""
    shares = list(dict.fromkeys(k for r in rows for k in (r.entry.measures.get("stream_reliance") or {})))
    extras = _extra_keys(rows)
    show_kappa = len({k for _, k in settings}) > 1
    head = ['<th data-type="number">unit</th>']
    head += [f'<th class="nosort" title="{esc(describe_setting(g, k))}">γ = {fmt(g)}'
             f'{f" · κ = {fmt(k)}" if show_kappa else ""}</th>' for g, k in settings]
    has = {key: _present(rows, key) for key in _KNOWN}
    any_recorded = any(r.recorded is not None for r in rows)
    any_motion = any(r.motion is not None for r in rows)
    if has["selectivity"]:
        head.append('<th data-type="number" title="class selectivity index">selectivity</th>')
    if has["top_class"]:
        head.append('<th data-type="text">top class</th>')
    if has["label"]:
        head.append('<th data-type="text">label</th>')
    if has["reliance_label"]:
        head.append('<th data-type="text">reliance</th>')
    head += [f'<th data-type="number" title="share of the drive lost without this input">reliance {esc(s)}</th>'
             for s in shares]
    if has["speed"]:
        head.append('<th data-type="number" title="playback speed of the largest mean response">preferred speed</th>')
    head += [f'<th data-type="{"text" if any(isinstance(r.entry.measures.get(k), str) for r in rows) else "number"}">'
             f"{esc(k.replace('_', ' '))}</th>" for k in extras]
    if any_motion:
        head += ['<th data-type="number" title="how much the optimized motion keeps its direction across γ '
                 '(1: the same direction at every γ, 0: directions that cancel)">motion consistency</th>',
                 '<th data-type="number" title="RMS magnitude of the optimized motion at the largest γ over that at '
                 'the smallest (below 1: slower at larger γ)">speed ratio γmax/γ0</th>']
    if any_recorded:
        head += ['<th data-type="number" title="maximum over the recorded clips (â)">recorded max</th>',
                 '<th data-type="number" title="mean over clips of the per-clip maximum">recorded mean</th>']
    head.append('<th data-type="number" title="largest activation the maximization reached">max activation</th>')

    body_rows, labels = [], set()
    for row in rows:
        entry, m = row.entry, row.entry.measures
        name = row.heading + (f" · {row.class_name}" if row.class_name else "")
        link = f'<a href="../{esc(row.page)}">{esc(name)}</a>' if row.page else esc(name)
        cells = [f'<td data-value="{entry.channel}">{link}</td>']
        by_setting: dict[tuple[float, float], ViewMedia] = {}
        for vm in row.media.views:
            by_setting.setdefault((vm.view.gamma, vm.view.kappa), vm)
        for setting in settings:
            vm = by_setting.get(setting)
            if vm is None:
                cells.append('<td class="thumbs"><span class="absent" title="no result at this setting">'
                             'not maximized</span></td>')
                continue
            pictures = []
            for tile in vm.tiles:
                if tile.media == "none":
                    pictures.append(f'<span class="absent" title="{esc(tile.input)} does not feed the unit">—</span>')
                else:
                    alt = f"{tile.input} at γ = {fmt(vm.view.gamma)}"
                    pictures.append(f'<img src="../{esc(tile.thumb)}" alt="{esc(alt)}" loading="eager" '
                                    f'title="{esc(alt)}, activation {fmt(vm.view.activation)}">')
            cells.append(f'<td class="thumbs">{"".join(pictures)}</td>')
        row_labels = []
        if has["selectivity"]:
            cells.append(_num_cell(m.get("selectivity")))
        if has["top_class"]:
            top = m.get("top_class")
            cells.append(f"<td>{esc(_class_label(top, class_names)) if top is not None else ''}</td>")
        for key in ("label", "reliance_label"):
            if has[key]:
                value = m.get(key)
                if value:
                    row_labels.append(str(value))
                cells.append(f'<td><span class="label {esc(value)}">{esc(value)}</span></td>' if value else "<td></td>")
        reliance = m.get("stream_reliance") or {}
        cells += [_num_cell(reliance.get(s)) for s in shares]
        if has["speed"]:
            speed = m.get("speed")
            cells.append(_num_cell(speed.get("preferred") if isinstance(speed, Mapping) else None))
        for key in extras:
            value = m.get(key)
            cells.append(f"<td>{esc(value)}</td>" if isinstance(value, str) else _num_cell(value))
        if any_motion:
            measured = row.motion.measured if row.motion is not None else None
            cells += [_num_cell(measured.consistency if measured else None),
                      _num_cell(measured.speed_ratio if measured else None)]
        if any_recorded:
            cells += [_num_cell(row.recorded.max if row.recorded else None),
                      _num_cell(row.recorded.mean if row.recorded else None)]
        cells.append(_num_cell(max((v.activation for v in entry.views), default=None)))
        labels.update(row_labels)
        body_rows.append(f'<tr data-labels="{esc(" ".join(row_labels))}" data-channel="{entry.channel}">'
                         f'{"".join(cells)}</tr>')
    rf = "; ".join(f"{esc(n)} {_axes(t)[0]}" for n, t in layer.receptive_field.items())
    stride = "; ".join(f"{esc(n)} {_axes(t)[0]}" for n, t in layer.stride.items())
    body = (
        f"{_crumbs(1, (layer.name, None))}<header><h1>{esc(layer.name)}</h1>"
        f"<p>{esc(layer.op_type)} · shape {esc('×'.join(map(str, layer.shape)))} · {layer.channels} channels · "
        f"streams: {esc(layer.streams)} · RF {rf} · stride {stride}</p>"
        f"<p class=\"muted\">Thumbnails per setting: {esc(', '.join(inputs))} (appearance as an image, motion as "
        f"RGB = horizontal, vertical, magnitude). Larger γ: slower motion. Click a header to sort, type to filter, "
        f"click a unit for its videos and charts.</p></header>"
        f"{_filter_controls('units', sorted(labels), 'label')}"
        f'<table id="units" class="sortable" data-layer="{esc(slug)}"><thead><tr>{"".join(head)}</tr></thead>'
        f'<tbody>{"".join(body_rows)}</tbody></table>'
    )
    return document(f"{layer.name} · kinetoscope atlas", body, 1)


def _num_cell(value: Any) -> str:
    number = _number(value)
    if number is None:
        return '<td class="num"></td>'
    return f'<td class="num" data-value="{number!r}">{fmt(number)}</td>'


# -- the unit page


def unit_page(row: UnitRow, layer: LayerInfo, layer_path: str, class_names: Sequence[str],
              previous: UnitRow | None, following: UnitRow | None) -> str:
    """Each view as playing video, top recorded clips, the two charts and every number known."""
    entry, media = row.entry, row.media
    pager = "".join(
        f'<a href="../../{esc(other.page)}">{arrow}</a>'
        for other, arrow in ((previous, "← previous unit"), (following, "next unit →")) if other is not None
    )
    title = row.heading + (f" · {row.class_name}" if row.class_name else "")
    views = []
    for vm in media.views:
        parts = []
        for tile in vm.tiles:
            if tile.media == "video":
                parts.append(f'<video src="../../{esc(tile.full)}" autoplay loop muted playsinline preload="auto" '
                             f'title="{esc(tile.input)}"></video>')
            elif tile.media == "image":
                parts.append(f'<img src="../../{esc(tile.full)}" alt="{esc(tile.input)}" title="{esc(tile.input)}">')
            else:
                parts.append(f'<div class="absent" title="{esc(tile.input)} does not feed the unit">not connected</div>')
        v = vm.view
        views.append(
            f'<figure class="view"><div class="media">{"".join(parts)}</div>'
            f'<figcaption title="{esc(describe_setting(v.gamma, v.kappa))}">γ = {fmt(v.gamma)} · κ = {fmt(v.kappa)} · '
            f"activation {fmt(v.activation)}</figcaption></figure>"
        )
    views_html = (f'<div class="views">{"".join(views)}</div>' if views
                  else '<p class="muted">not maximized: measures only</p>')
    sections = [f"<h2>Optimized inputs</h2>{views_html}"]
    if media.clips:
        clips = []
        for clip in media.clips:
            pictures = "".join(f'<img src="../../{esc(p)}" alt="top clip {clip.rank}">' for p in clip.pictures)
            clips.append(f"<figure>{pictures}<figcaption>#{clip.rank} · clip {esc(clip.clip_id)} · "
                         f"{fmt(clip.value)}</figcaption></figure>")
        sections.append(f'<h2>Top recorded clips</h2><div class="clips">{"".join(clips)}</div>')
    charts = [f'<img src="../../{esc(src)}" alt="{alt}">' for src, alt in
              ((media.class_chart, "response per class"), (media.speed_chart, "speed tuning"),
               (media.motion_chart, "optimized motion across γ")) if src]
    if charts:
        sections.append(f'<h2>Tuning</h2><div class="charts">{"".join(charts)}</div>')
    sections.append(f"<h2>Numbers</h2>{_numbers(row, class_names)}")
    body = (
        f'<nav class="pager">{pager}</nav>{_crumbs(2, (layer.name, layer_path), (title, None))}'
        f"<header><h1>{esc(title)}</h1><p class=\"muted\">{esc(entry.label or 'from the analysis')}</p></header>"
        f'{"".join(sections)}'
    )
    return document(f"{title} · kinetoscope atlas", body, 2)


def _numbers(row: UnitRow, class_names: Sequence[str]) -> str:
    entry, m = row.entry, row.entry.measures
    items: list[tuple[str, str]] = [("layer", entry.layer), ("channel", str(entry.channel)), ("target", entry.kind)]
    if entry.position:
        items.append(("position", ", ".join(map(str, entry.position))))
    if row.recorded is not None:
        items += [("recorded max (â)", fmt(row.recorded.max)), ("recorded mean", fmt(row.recorded.mean))]
    if row.motion is not None:
        items += [("motion consistency", fmt(row.motion.measured.consistency)),
                  ("speed ratio γmax/γ0", fmt(row.motion.measured.speed_ratio))]
    for key, value in m.items():
        if key in ("channel", "class_mean", "class_max", "speed"):
            continue
        if key == "top_class":
            items.append(("top class", _class_label(value, class_names)))
        elif key == "stream_reliance" and isinstance(value, Mapping):
            items.append(("stream reliance", ", ".join(f"{k} {fmt(v)}" for k, v in value.items())))
        elif isinstance(value, Mapping):
            items.append((key.replace("_", " "), ", ".join(f"{k} {fmt(v)}" for k, v in value.items())))
        elif isinstance(value, (list, tuple)):
            items.append((key.replace("_", " "), ", ".join(fmt(v) for v in value)))
        else:
            items.append((key.replace("_", " "), fmt(value)))
    out = '<dl class="numbers">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"
    out += _class_table(row, class_names) + _speed_table(m.get("speed")) + _motion_table(row.motion)
    return out


def _class_table(row: UnitRow, class_names: Sequence[str]) -> str:
    columns: list[tuple[str, Sequence[Any]]] = []
    for key, header in (("class_mean", "mean"), ("class_max", "max")):
        values = row.entry.measures.get(key)
        if isinstance(values, (list, tuple)) and values:
            columns.append((header, values))
    if row.recorded is not None and row.recorded.class_max is not None and row.recorded.class_max.size:
        columns.append(("recorded max", row.recorded.class_max.tolist()))
    if not columns:
        return ""
    count = max(len(values) for _, values in columns)
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(count)]
    head = "".join(f'<th data-type="number">{esc(h)}</th>' for h, _ in columns)
    body = "".join(
        f'<tr><td data-value="{i}">{esc(names[i])}</td>'
        + "".join(_num_cell(values[i] if i < len(values) else None) for _, values in columns) + "</tr>"
        for i in range(count)
    )
    return (f'<table id="classes" class="sortable"><thead><tr><th data-type="number">class</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _speed_table(speed: Any) -> str:
    if not isinstance(speed, Mapping) or not speed.get("speeds") or not speed.get("curve"):
        return ""
    pairs = list(zip(speed["speeds"], speed["curve"]))
    cells = "".join(f"<tr><td>{fmt(s)}×</td>{_num_cell(c)}</tr>" for s, c in pairs)
    return f"<table><thead><tr><th>speed</th><th>mean response</th></tr></thead><tbody>{cells}</tbody></table>"


def _motion_table(motion: UnitMotion | None) -> str:
    """Per γ, the optimized motion's magnitude, direction (degrees, and as an arrow on screen) and coherence."""
    if motion is None:
        return ""
    measured = motion.measured
    rows = []
    for gamma, magnitude, direction, coherence in zip(motion.gammas, measured.magnitude, measured.direction,
                                                      measured.coherence):
        degrees = math.degrees(direction) if not math.isnan(direction) else None
        arrow = (f'<span class="arrow" style="transform: rotate({degrees:.1f}deg)" '
                 f'title="{fmt(degrees)}°">→</span>' if degrees is not None else "")
        rows.append(f'<tr><td data-value="{gamma!r}">{fmt(gamma)}</td>{_num_cell(magnitude)}{_num_cell(degrees)}'
                    f'<td>{arrow}</td>{_num_cell(coherence)}</tr>')
    caption = (f"Optimized motion of {esc(motion.input)} at κ = {fmt(motion.kappa)}: RMS flow magnitude (input units), "
               f"direction of the summed flow (degrees; 0 right, 90 down) and coherence |Σv| / Σ|v|.")
    return (f'<h3>Motion across γ</h3><p class="muted">{caption}</p>'
            f'<table id="motion" class="sortable"><thead><tr><th data-type="number">γ</th>'
            f'<th data-type="number">magnitude</th><th data-type="number">direction °</th>'
            f'<th class="nosort">arrow</th><th data-type="number">coherence</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
