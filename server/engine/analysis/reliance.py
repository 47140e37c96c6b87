"""Stream reliance: how much of a unit's response needs appearance, motion, or both together.

Section 4.2.1 of the paper contrasts units of the separate streams (whose appearance and
motion inputs have no correspondence) with fusion units that link the two. Here an
input is "removed" by replacing it with its dataset mean (the per-pixel mean over the
clips, the same for every clip), so a unit keeps its typical drive from that input but
loses what the clip itself contributes. For clip n, f(S) is the unit's response with
only the inputs in S taken from the clip and the rest at their means:

* reliance on input i: mean_n |f(all) − f(all − i)| / mean_n |f(all) − f(∅)|, the part of
  the unit's drive lost without i. A layer fed by one input gets 1 on it and exactly 0
  on every other input, because f then does not depend on them;
* shares, summing to 1: each input alone, e_i = f({i}) − f(∅), and the rest of the
  drive, which needs inputs together, e_joint = f(all) − f(∅) − Σ_i e_i; a share is
  mean_n |e| over the sum of those. Inputs of one kind (appearance: image, video; motion:
  stacked flow, flow video) add up, and the largest share names the unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from kinetoscope.common import MOTION_KINDS
from kinetoscope.server.importer import InputSpec

from .responses import ResponseFunction

APPEARANCE, MOTION, JOINT, UNRESPONSIVE = "appearance", "motion", "joint", "unresponsive"


@dataclass(frozen=True)
class Reliance:
    """Per unit (C units) of one layer, over the same N clips."""

    layer: str
    inputs: tuple[str, ...]
    response: np.ndarray  # [C] mean response with every input from the clip
    without: dict[str, np.ndarray]  # input → [C] mean response with that input at its mean
    without_all: np.ndarray  # [C] response with every input at its mean
    reliance: dict[str, np.ndarray]  # input → [C] drive lost without it, ≥ 0 (1: all of it)
    shares: dict[str, np.ndarray]  # appearance / motion / joint → [C], summing to 1 (NaN for a constant unit)
    labels: list[str]  # [C] appearance, motion, joint, or unresponsive


def stream_of(spec: InputSpec) -> str:
    """appearance or motion, by the input's declared kind."""
    return MOTION if spec.kind in MOTION_KINDS else APPEARANCE


def stream_reliance(function: ResponseFunction, clips: Mapping[str, np.ndarray]) -> dict[str, Reliance]:
    """Reliance and shares for every layer of `function` over the clips (arrays [N, *shape] per graph input)."""
    specs = {spec.name: spec for spec in function.model.inputs}
    function.buffer.check_batch(clips)
    names = tuple(specs)
    count = len(next(iter(clips.values())))
    means = {name: np.asarray(clips[name]).mean(axis=0, keepdims=True, dtype=np.float64) for name in names}
    cache: dict[frozenset[str], dict[str, np.ndarray]] = {}

    def f(present: frozenset[str]) -> dict[str, np.ndarray]:
        if present not in cache:
            # every variant runs as a batch of the same size, so a stream that sees identical inputs in two
            # variants gives bitwise identical values and a layer's independence from an input is exact
            cache[present] = function({name: clips[name] if name in present else np.repeat(means[name], count, axis=0)
                                       for name in names})
        return cache[present]

    every = frozenset(names)
    full, empty = f(every), f(frozenset())
    out = {}
    for layer in function.layers:
        total = np.mean(np.abs(full[layer.name] - empty[layer.name]), axis=0)
        lost = {name: np.mean(np.abs(full[layer.name] - f(every - {name})[layer.name]), axis=0) for name in names}
        alone = {name: f(frozenset({name}))[layer.name] - empty[layer.name] for name in names}
        joint = full[layer.name] - empty[layer.name] - sum(alone.values())
        parts = {APPEARANCE: 0.0, MOTION: 0.0}
        for name in names:
            parts[stream_of(specs[name])] = parts[stream_of(specs[name])] + np.mean(np.abs(alone[name]), axis=0)
        parts[JOINT] = np.mean(np.abs(joint), axis=0)
        parts = {key: np.broadcast_to(value, total.shape).astype(np.float64) for key, value in parts.items()}
        scale = sum(parts.values())
        responsive = total > 1e-9 * (np.max(np.abs(full[layer.name]), axis=0) + 1e-30)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = {key: np.where(responsive, value / scale, np.nan) for key, value in parts.items()}
            reliance = {name: np.where(responsive, value / total, np.nan) for name, value in lost.items()}
        order = (APPEARANCE, MOTION, JOINT)
        stacked = np.stack([np.nan_to_num(shares[key], nan=-1.0) for key in order])
        labels = [order[i] if ok else UNRESPONSIVE for i, ok in zip(np.argmax(stacked, axis=0), responsive)]
        out[layer.name] = Reliance(
            layer.name, tuple(layer.inputs), full[layer.name].mean(0),
            {name: f(every - {name})[layer.name].mean(0) for name in names}, empty[layer.name].mean(0),
            reliance, shares, labels)
    return out
