"""Evolution across checkpoints from result files: the paper's Fig. 9 as numbers and curves, without torch.

Each checkpoint is a set of result files (a `maximize --out` folder, or one model's
folder of a sweep); units are matched across checkpoints by target (layer, channel)
and settings by (κ, γ). The measures are those of `engine.analysis.evolution`
(docs/ANALYSIS.md): the change 1 − cos(x_k, x_{k+1}) of each unit's optimized input
from one checkpoint to the next, and its temporal variation
mean_k ‖x_{k+1} − x_k‖² / mean_k ‖x_k‖² over time steps (frames, or flow fields).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kinetoscope.motion import MOTION_KINDS, flow_fields

from ..render.result import Result, load_result, sample_layout

MANIFEST = "manifest.json"
RESULT_FILE = "result.npz"


class EvolutionError(ValueError):
    """Checkpoints that cannot be compared; the message says what to give instead."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    results: tuple[Result, ...]


@dataclass(frozen=True)
class InputEvolution:
    """One graph input of one layer's units: change [K − 1, U, S] and temporal variation [K, U, S]."""

    change: np.ndarray
    variation: np.ndarray


@dataclass(frozen=True)
class LayerEvolution:
    layer: str
    checkpoints: tuple[str, ...]
    channels: tuple[int, ...]
    settings: tuple[tuple[float, float], ...]  # (κ, γ)
    inputs: dict[str, InputEvolution]


def temporal_steps(samples: np.ndarray, kind: str, layout: str) -> np.ndarray | None:
    """Samples [..., *sample] as time steps [..., K, D]: flow fields of a flow input, frames of a video; None for an image."""
    if kind in MOTION_KINDS:
        fields = flow_fields(samples, kind, layout)
        return fields.reshape(*fields.shape[:-3], -1)
    if kind != "video":
        return None
    letters = sample_layout(layout)
    lead = samples.ndim - len(letters)
    canonical = np.transpose(samples, [*range(lead), *(lead + letters.index(a) for a in "CTHW")])
    steps = np.moveaxis(canonical, lead + 1, lead)  # [..., T, C, H, W]
    return steps.reshape(*steps.shape[: lead + 1], -1)


def variation(steps: np.ndarray) -> np.ndarray:
    """mean_k ‖x_{k+1} − x_k‖² / mean_k ‖x_k‖² of steps [..., K, D]; NaN for an all-zero input or one step."""
    steps = np.asarray(steps, np.float64)
    if steps.shape[-2] < 2:
        return np.full(steps.shape[:-2], np.nan)
    energy = np.mean(np.sum(steps**2, axis=-1), axis=-1)
    difference = np.mean(np.sum(np.diff(steps, axis=-2) ** 2, axis=-1), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(energy > 0, difference / np.where(energy > 0, energy, 1.0), np.nan)


def change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """1 − cos of inputs [..., *sample] flattened per sample (leading axes: units, settings); NaN where either is zero."""
    a = np.asarray(before, np.float64).reshape(*before.shape[:2], -1)
    b = np.asarray(after, np.float64).reshape(*after.shape[:2], -1)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, 1.0 - np.sum(a * b, axis=-1) / np.where(norms > 0, norms, 1.0), np.nan)


def load_checkpoints(paths: Sequence[Path]) -> list[Checkpoint]:
    """Checkpoints in training order: one per folder given, or one per model of a single sweep folder."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise EvolutionError(f"{path} does not exist; give the folders `kinetoscope maximize --out` or `sweep` wrote")
    if len(paths) == 1 and (paths[0] / MANIFEST).is_file():
        models = json.loads((paths[0] / MANIFEST).read_text(encoding="utf-8")).get("models", {})
        folders = [paths[0] / name for name in models if (paths[0] / name).is_dir()]
    else:
        folders = paths
    if len(folders) < 2:
        raise EvolutionError(f"{paths[0]} holds the results of {len(folders)} model(s); give a sweep folder over two or "
                             "more checkpoints, or one results folder per checkpoint in training order")
    checkpoints = []
    for folder in folders:
        files = [folder] if folder.is_file() else sorted(folder.rglob(RESULT_FILE))
        if not files:
            raise EvolutionError(f"no {RESULT_FILE} under {folder}")
        checkpoints.append(Checkpoint(folder.stem if folder.is_file() else folder.name,
                                      tuple(load_result(f) for f in files)))
    return checkpoints


def _index(checkpoint: Checkpoint) -> dict[tuple[str, int], dict[tuple[float, float], tuple[Result, int, int]]]:
    """(layer, channel) → (κ, γ) → (result, unit, setting) for units with a single-term target."""
    found: dict[tuple[str, int], dict[tuple[float, float], tuple[Result, int, int]]] = {}
    for result in checkpoint.results:
        for u in range(result.n_units):
            target = result.target(u)
            if target is None:
                continue
            for s in range(result.n_settings):
                key = (float(result.kappas[s]), float(result.gammas[s]))
                found.setdefault((target.layer, target.channel), {})[key] = (result, u, s)
    return found


def checkpoint_evolution(checkpoints: Sequence[Checkpoint]) -> dict[str, LayerEvolution]:
    """Per layer, the measures of the units and settings every checkpoint holds."""
    if len(checkpoints) < 2:
        raise EvolutionError("give the results of at least two checkpoints")
    indexes = [_index(c) for c in checkpoints]
    common = set(indexes[0]).intersection(*indexes[1:])
    if not common:
        raise EvolutionError("the checkpoints share no maximized unit (layer and channel); maximize the same units "
                             "of each checkpoint, e.g. one sweep spec listing every checkpoint as a model")
    names = tuple(c.name for c in checkpoints)
    out = {}
    for layer in dict.fromkeys(layer for layer, _ in sorted(common)):
        channels = tuple(sorted(c for name, c in common if name == layer))
        settings = sorted(set.intersection(*(set(index[(layer, c)]) for index in indexes for c in channels)))
        if not settings:
            continue
        first = indexes[0][(layer, channels[0])][settings[0]][0]
        inputs = {}
        for spec in first.inputs:
            blank = np.full(first.arrays[spec.name].shape[2:], np.nan)
            stacks = [_stack(index, layer, channels, settings, spec.name, blank) for index in indexes]
            if len({a.shape for a in stacks}) > 1:
                raise EvolutionError(f"input {spec.name!r} has different shapes across checkpoints")
            steps = [temporal_steps(a, spec.kind, spec.layout) for a in stacks]
            inputs[spec.name] = InputEvolution(
                np.stack([change(a, b) for a, b in zip(stacks[:-1], stacks[1:])]),
                np.stack([variation(x) if x is not None else np.full(stacks[0].shape[:2], np.nan) for x in steps]))
        out[layer] = LayerEvolution(layer, names, channels, tuple(settings), inputs)
    return out


def _stack(index: dict, layer: str, channels: Sequence[int], settings: Sequence[tuple[float, float]], name: str,
           blank: np.ndarray) -> np.ndarray:
    """One checkpoint's optimized `name` inputs [U, S, *sample]; `blank` (NaN) where the input was not optimized."""
    units = []
    for c in channels:
        row = []
        for key in settings:
            result, u, s = index[(layer, c)][key]
            j = next((k for k, other in enumerate(result.inputs) if other.name == name), None)
            optimized = j is not None and result.optimized[u, s, j]
            row.append(np.asarray(result.arrays[name][u, s], np.float64) if optimized else blank)
        if len({r.shape for r in row}) > 1:
            raise EvolutionError(f"input {name!r} has different shapes across the results of {layer} channel {c}")
        units.append(np.stack(row))
    return np.stack(units)


def _plain(array: np.ndarray) -> Any:
    return [_plain(a) for a in array] if np.ndim(array) else (None if not math.isfinite(float(array)) else float(array))


def evolution_document(found: dict[str, LayerEvolution]) -> dict[str, Any]:
    """The JSON document `kinetoscope analyze --evolution --json` prints (NaN as null); means are over units."""
    checkpoints = next(iter(found.values())).checkpoints if found else ()
    layers = {}
    for name, layer in found.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an image input's all-NaN variation
            layers[name] = {
                "channels": list(layer.channels),
                "settings": [{"kappa": k, "gamma": g} for k, g in layer.settings],
                "inputs": {input_name: {"change": _plain(e.change), "variation": _plain(e.variation),
                                        "mean_change": _plain(np.nanmean(e.change, axis=1)),
                                        "mean_variation": _plain(np.nanmean(e.variation, axis=1))}
                           for input_name, e in layer.inputs.items()},
            }
    return {"checkpoints": list(checkpoints), "layers": layers}


def describe(document: dict[str, Any]) -> list[str]:
    """One line per layer, input and setting: mean change per transition and mean variation per checkpoint."""
    lines = [f"checkpoints: {' → '.join(document['checkpoints'])}"]
    for layer, entry in document["layers"].items():
        for input_name, measures in entry["inputs"].items():
            for s, setting in enumerate(entry["settings"]):
                changes = " ".join(_number(row[s]) for row in measures["mean_change"])
                variations = " ".join(_number(row[s]) for row in measures["mean_variation"])
                lines.append(f"{layer} {input_name} γ={setting['gamma']:g} ({len(entry['channels'])} units): "
                             f"change {changes}; temporal variation {variations}")
    return lines


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def run_evolution(args: Any) -> int:
    """`kinetoscope analyze --evolution DIR [DIR ...]`: reads result files only, no server."""
    from ..commands import UserError  # noqa: PLC0415
    from ..render.result import ResultError  # noqa: PLC0415

    try:
        document = evolution_document(checkpoint_evolution(load_checkpoints(args.evolution)))
    except (ValueError, ResultError) as exc:  # EvolutionError, or arrays that do not line up
        raise UserError(str(exc)) from None
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(describe(document)))
    return 0


__all__ = ["Checkpoint", "EvolutionError", "InputEvolution", "LayerEvolution", "checkpoint_evolution", "describe",
           "evolution_document", "load_checkpoints", "run_evolution", "temporal_steps"]
