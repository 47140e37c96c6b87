"""The atlas's charts (per class, speed tuning, motion across γ, evolution across checkpoints) as PNG files, drawn with matplotlib's Agg canvas.

Figures are made with `matplotlib.figure.Figure` and saved without pyplot, so no GUI
backend is ever chosen and nothing global changes in the caller's process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

_BAR = "#4c72b0"
_BEST = "#d62728"


def _figure(width: float, height: float, bottom: float = 0.16):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - only while writing charts
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(width, height), dpi=100)  # fixed margins: a layout engine doubles the drawing time
    figure.subplots_adjust(left=0.14, right=0.97, top=0.9, bottom=bottom)
    FigureCanvasAgg(figure)  # attaches itself: savefig renders with Agg whatever backend pyplot uses
    return figure


def class_chart(path: Path, maxima: Sequence[float] | None, means: Sequence[float] | None,
                class_names: Sequence[str]) -> Path:
    """Bars of the maximum response per class (strongest in red), the class mean as black ticks."""
    values = np.asarray(maxima if maxima is not None else means, dtype=np.float64).reshape(-1)
    count = len(values)
    names = list(class_names) if len(class_names) == count else [str(i) for i in range(count)]
    longest = max((len(n) for n in names), default=1)
    height = 2.4 + 0.045 * longest  # room below the axes for the rotated class names
    figure = _figure(max(4.0, 0.38 * count + 1.5), height, bottom=(0.25 + 0.045 * longest) / height)
    axes = figure.add_subplot()
    shown = np.nan_to_num(values, nan=0.0)
    colours = [_BAR] * count
    if count and np.isfinite(values).any():
        colours[int(np.nanargmax(values))] = _BEST
    axes.bar(np.arange(count), shown, color=colours, label="max" if maxima is not None else "mean")
    if maxima is not None and means is not None and len(means) == count:
        axes.scatter(np.arange(count), np.asarray(means, dtype=np.float64), marker="_", s=160, color="black",
                     label="mean", zorder=3)
        axes.legend(loc="best", fontsize=8)
    axes.axhline(0.0, color="#999", linewidth=0.6)
    axes.set_xticks(np.arange(count), names, rotation=60, ha="right", fontsize=7)
    axes.set_ylabel("response")
    axes.set_title("response per class", fontsize=10)
    figure.savefig(path, format="png")
    return path


def speed_chart(path: Path, speeds: Sequence[float], curve: Sequence[float], preferred: float | None) -> Path:
    """The mean response against playback speed (log scale, 1 = recorded speed), the preferred speed marked."""
    speeds_array = np.asarray(speeds, dtype=np.float64).reshape(-1)
    values = np.asarray(curve, dtype=np.float64).reshape(-1)
    figure = _figure(4.0, 3.0, bottom=0.17)
    axes = figure.add_subplot()
    axes.plot(speeds_array, values, marker="o", color=_BAR)
    if np.all(speeds_array > 0):
        axes.set_xscale("log", base=2)
    axes.set_xticks(speeds_array, [f"{s:g}×" for s in speeds_array])
    axes.minorticks_off()
    if preferred is not None and np.isfinite(preferred):
        axes.axvline(preferred, color=_BEST, linestyle="--", linewidth=1, label=f"preferred {preferred:g}×")
        axes.legend(loc="best", fontsize=8)
    axes.set_xlabel("playback speed")
    axes.set_ylabel("mean response")
    axes.set_title("speed tuning", fontsize=10)
    figure.savefig(path, format="png")
    return path


def motion_chart(path: Path, gammas: Sequence[float], magnitude: Sequence[float], direction: Sequence[float],
                 coherence: Sequence[float]) -> Path:
    """The optimized motion's magnitude against γ, each point with an arrow of its direction.

    Arrows point as the motion looks on screen (image axes: a positive vertical flow points
    down) and are as long as the motion is coherent; a setting whose motion cancels has none.
    """
    gammas_array = np.asarray(gammas, dtype=np.float64).reshape(-1)
    values = np.asarray(magnitude, dtype=np.float64).reshape(-1)
    angles = np.asarray(direction, dtype=np.float64).reshape(-1)
    lengths = np.clip(np.nan_to_num(np.asarray(coherence, dtype=np.float64).reshape(-1)), 0.0, 1.0)
    positions = np.arange(len(values))  # γ is usually 0, 1, 5, 10: evenly spaced points read best
    figure = _figure(4.0, 3.0, bottom=0.17)
    axes = figure.add_subplot()
    axes.plot(positions, values, marker="o", color=_BAR)
    shown = np.isfinite(angles) & (lengths > 0)
    if shown.any():
        axes.quiver(positions[shown], values[shown], (np.cos(angles) * lengths)[shown],
                    (-np.sin(angles) * lengths)[shown], angles="uv", scale_units="inches", scale=1 / 0.35,
                    color=_BEST, width=0.012, zorder=3)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    axes.set_ylim(0.0, max(top, 1e-9) * 1.35)
    axes.set_xlim(-0.5, len(values) - 0.5)
    axes.set_xticks(positions, [f"{g:g}" for g in gammas_array])
    axes.set_xlabel("γ (temporal regularizer)")
    axes.set_ylabel("RMS flow magnitude")
    axes.set_title("optimized motion across γ", fontsize=10)
    figure.savefig(path, format="png")
    return path


def evolution_chart(path: Path, checkpoints: Sequence[str],
                    curves: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> Path:
    """Fig. 9 as curves: per (layer, input, γ), the mean change to the next checkpoint and the mean temporal variation.

    `curves` holds (label, change [K − 1], variation [K]); a curve that is all NaN (an
    image input's variation) is left out of its panel.
    """
    figure = _figure(10.0, 3.6, bottom=0.3)
    figure.subplots_adjust(left=0.07, right=0.78, bottom=0.2, wspace=0.3)
    steps = list(range(len(checkpoints)))
    changes, variations = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for n, (label, change, variation) in enumerate(curves):
        colour = f"C{n % 10}"
        change, variation = np.asarray(change, np.float64), np.asarray(variation, np.float64)
        if np.isfinite(change).any():
            changes.plot([k + 0.5 for k in steps[:-1]], change, "o-", color=colour, label=label)
        if np.isfinite(variation).any():
            variations.plot(steps, variation, "s-", color=colour, label=label)
    changes.set_title("change to the next checkpoint (1 − cos)", fontsize=9)
    variations.set_title("temporal variation", fontsize=9)
    for axes in (changes, variations):
        axes.set_xticks(steps)
        axes.set_xticklabels(list(checkpoints), rotation=20, ha="right", fontsize=7)
        axes.set_xlim(-0.3, len(steps) - 0.7)
        axes.tick_params(axis="y", labelsize=8)
        axes.set_ylim(bottom=0)
    handles, labels = changes.get_legend_handles_labels()
    more, more_labels = variations.get_legend_handles_labels()
    known = dict(zip(labels, handles))
    known.update({label: handle for label, handle in zip(more_labels, more) if label not in known})
    figure.legend(list(known.values()), list(known), loc="center right", fontsize=7, frameon=False)
    figure.savefig(path)
    return path
