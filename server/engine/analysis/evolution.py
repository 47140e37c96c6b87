"""How units' optimized inputs change across training checkpoints (the paper's Fig. 9).

Fig. 9 shows early filters settling quickly and higher ones forming late, their
temporal structure building up over epochs. Two numbers per unit and setting make that
measurable from `maximize` results of the same units at each checkpoint
(`MaximizeResult.stacked(name)`, [U, S, *input shape] per input):

* change from one checkpoint to the next: 1 − cos(x_k, x_{k+1}) of the flattened inputs,
  in [0, 2]; cosine, not a distance, because the optimizer's B-ball bound fixes the
  scale and the pattern is what changes (0: same pattern, 1: unrelated);
* temporal variation: mean_k ‖x_{k+1} − x_k‖² / mean_k ‖x_k‖² over the input's time
  steps (frames, or flow fields of a stack; axes as in `engine.geometry.canonical`), in
  [0, 4]: 0 for an input constant in time, 2 for steps unrelated to each other. NaN for
  an `image` input, which has one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import InputSpec

from ..geometry import canonical_view


@dataclass(frozen=True)
class Evolution:
    """One graph input's optimized inputs for U units × S settings over K checkpoints."""

    input: str
    checkpoints: tuple[str, ...]
    change: np.ndarray  # [K − 1, U, S] 1 − cosine between checkpoint k and k + 1
    variation: np.ndarray  # [K, U, S] temporal variation at each checkpoint


def cosine_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """1 − cos of inputs [U, S, ...] flattened per unit and setting; NaN where either is all zeros."""
    a = np.asarray(before, np.float64).reshape(*np.shape(before)[:2], -1)
    b = np.asarray(after, np.float64).reshape(*np.shape(after)[:2], -1)
    if a.shape != b.shape:
        raise ValueError(f"checkpoints give inputs of different shapes {list(np.shape(before))} and {list(np.shape(after))}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, 1.0 - np.sum(a * b, axis=-1) / np.where(norms > 0, norms, 1.0), np.nan)


def temporal_variation(inputs: np.ndarray, spec: InputSpec) -> np.ndarray:
    """mean_k ‖x_{k+1} − x_k‖² / mean_k ‖x_k‖² of inputs [U, S, *input shape without batch]; NaN for one step."""
    inputs = np.asarray(inputs, np.float64)
    units, settings = inputs.shape[:2]
    flat = torch.from_numpy(np.ascontiguousarray(inputs.reshape(units * settings, *inputs.shape[2:])))
    steps = canonical_view(flat, spec.layout, spec.kind, spec.name).numpy()  # [U·S, K, D, H, W]
    steps = steps.reshape(units, settings, steps.shape[1], -1)
    if steps.shape[2] < 2:
        return np.full((units, settings), np.nan)
    energy = np.mean(np.sum(steps**2, axis=-1), axis=-1)
    difference = np.mean(np.sum(np.diff(steps, axis=2) ** 2, axis=-1), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(energy > 0, difference / np.where(energy > 0, energy, 1.0), np.nan)


def evolution(optimized: Sequence[Mapping[str, np.ndarray]], specs: Sequence[InputSpec],
              checkpoints: Sequence[str] | None = None) -> dict[str, Evolution]:
    """Per graph input, change and temporal variation over checkpoints in training order.

    `optimized[k][name]` is [U, S, *input shape] for checkpoint k (`stacked(name)` of its
    `maximize` result); every checkpoint must hold the same units and settings.
    """
    if len(optimized) < 2:
        raise ValueError("give the optimized inputs of at least two checkpoints")
    names = tuple(checkpoints) if checkpoints is not None else tuple(f"checkpoint {k}" for k in range(len(optimized)))
    if len(names) != len(optimized):
        raise ValueError(f"{len(optimized)} checkpoints but {len(names)} names")
    out = {}
    for spec in specs:
        missing = [names[k] for k, inputs in enumerate(optimized) if spec.name not in inputs]
        if missing:
            raise ValueError(f"input {spec.name!r} is missing from {', '.join(missing)}")
        arrays = [np.asarray(inputs[spec.name]) for inputs in optimized]
        change = np.stack([cosine_change(a, b) for a, b in zip(arrays[:-1], arrays[1:])])
        variation = np.stack([temporal_variation(a, spec) for a in arrays])
        out[spec.name] = Evolution(spec.name, names, change, variation)
    return out
