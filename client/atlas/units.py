"""Which units the atlas shows, and everything known about each, gathered from results, recording and analysis.

A unit is a layer's channel (or one neuron of it), named by the structured target its
result carries. Units of several result files (a sweep, or maximizations at different
γ) merge by target; analysis measures and recorded statistics attach by layer and
channel. Every source is optional, and so is every measure in the analysis document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..render.result import Result
from ..types import LayerRecording, Recording

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class View:
    """One optimized input set: unit `unit` of `results[result]` under setting `setting`."""

    result: int
    unit: int
    setting: int
    gamma: float
    kappa: float
    activation: float


@dataclass
class UnitEntry:
    """A unit of a layer with its views (maximizations), measures (analysis) and recorded statistics."""

    layer: str
    channel: int
    kind: str = "channel"  # channel, neuron or logit; "channel" for units known only from the analysis
    position: tuple[int, ...] = ()
    label: str = ""  # the result's display label, e.g. "Channel('conv_fusion', 3)"
    views: list[View] = field(default_factory=list)
    measures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File-name-safe and unique within its layer: c0003, or c0003_at1-2-3 for a neuron."""
        suffix = "_at" + "-".join(str(p) for p in self.position) if self.position else ""
        return f"c{self.channel:04d}{suffix}"


@dataclass
class Collected:
    """The atlas's units per layer (layers in catalog order, units by channel) and what had to be left out."""

    layers: dict[str, list[UnitEntry]]
    skipped_without_target: int = 0  # sums of terms, or files written before results carried targets
    skipped_unknown_layer: int = 0  # targets naming a layer the model's catalog lacks


def slugs(names: Sequence[str]) -> dict[str, str]:
    """File-name-safe, distinct names for layers such as `rgb/conv1` or `/Mul_output_0`."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in names:
        base = _UNSAFE.sub("_", name).strip("_.") or "layer"
        slug, n = base, 1
        while slug.lower() in taken:
            n += 1
            slug = f"{base}_{n}"
        taken.add(slug.lower())
        out[name] = slug
    return out


def collect_units(catalog: Sequence[str], results: Sequence[Result],
                  analysis: Mapping[str, Any] | None = None) -> Collected:
    """Groups the results' units and the analysis's units by layer; views sorted by (γ, κ)."""
    known = set(catalog)
    entries: dict[tuple[str, int, tuple[int, ...]], UnitEntry] = {}
    collected = Collected({})
    for r_index, result in enumerate(results):
        for u in range(result.n_units):
            target = result.target(u)
            if target is None:
                collected.skipped_without_target += 1
                continue
            if target.layer not in known:
                collected.skipped_unknown_layer += 1
                continue
            key = (target.layer, target.channel, tuple(target.position) if target.kind == "neuron" else ())
            entry = entries.setdefault(key, UnitEntry(target.layer, target.channel, target.kind, key[2], result.units[u]))
            for s in range(result.n_settings):
                entry.views.append(View(r_index, u, s, float(result.gammas[s]), float(result.kappas[s]),
                                        float(result.activation[u, s])))
    for layer, units in layer_measures(analysis).items():
        if layer not in known:
            continue
        for channel, measures in units.items():
            matched = [e for (name, c, _), e in entries.items() if name == layer and c == channel]
            for entry in matched:
                entry.measures = measures
            if not matched:
                entries[(layer, channel, ())] = UnitEntry(layer, channel, measures=measures)
    for entry in entries.values():
        entry.views.sort(key=lambda v: (v.gamma, v.kappa, v.result, v.setting))
    order = {name: i for i, name in enumerate(catalog)}
    for key in sorted(entries, key=lambda k: (order[k[0]], k[1], k[2])):
        collected.layers.setdefault(key[0], []).append(entries[key])
    return collected


def layer_measures(analysis: Mapping[str, Any] | None) -> dict[str, dict[int, Mapping[str, Any]]]:
    """The analysis document's units per layer and channel; entries without a channel number are ignored."""
    out: dict[str, dict[int, Mapping[str, Any]]] = {}
    layers = (analysis or {}).get("layers") or {}
    if not isinstance(layers, Mapping):
        raise ValueError("the analysis document's 'layers' must map layer names to lists of units")
    for layer, units in layers.items():
        for unit in units or ():
            channel = unit.get("channel") if isinstance(unit, Mapping) else None
            if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
                out.setdefault(str(layer), {})[int(channel)] = unit
    return out


@dataclass(frozen=True)
class Recorded:
    """A unit's recorded statistics: â, the mean per-clip maximum, top clips and per-class maxima."""

    max: float
    mean: float
    top_index: tuple[int, ...]
    top_ids: tuple[str, ...]
    top_values: tuple[float, ...]
    class_max: np.ndarray | None  # [K], NaN where no clip had the class


def recorded(recording: Recording | None, layer: str, channel: int) -> Recorded | None:
    """The recording's statistics for one channel, or None when the layer or channel was not recorded."""
    stats: LayerRecording | None = recording.layers.get(layer) if recording is not None else None
    if stats is None or not 0 <= channel < stats.channels:
        return None
    per_class = np.asarray(stats.per_class_max[channel], dtype=np.float64) if stats.per_class_max.size else None
    return Recorded(float(stats.max[channel]), float(stats.mean[channel]),
                    tuple(int(i) for i in stats.top_index[channel] if int(i) >= 0),
                    tuple(str(i) for i in stats.top_ids[channel]),
                    tuple(float(v) for v in stats.top_values[channel]), per_class)
