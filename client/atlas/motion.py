"""A unit's optimized motion across γ, from its views' flow inputs (`kinetoscope.motion`).

The atlas shows it only where it means something: a flow input that feeds the unit at
two or more distinct γ. Where results hold several κ, the κ with the most distinct γ is
used (ties: the smallest κ), one view per γ, so the comparison changes γ alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kinetoscope.common import MOTION_KINDS
from kinetoscope.motion import MotionAcrossSettings, MotionError, flow_fields, motion_across_settings

from ..render.result import Result
from .units import UnitEntry, View


@dataclass(frozen=True)
class UnitMotion:
    """The measured motion of one flow input at one κ, settings in increasing γ."""

    input: str
    kappa: float
    measured: MotionAcrossSettings

    @property
    def gammas(self) -> tuple[float, ...]:
        return self.measured.gammas


def _per_gamma(views: Sequence[View]) -> tuple[float, list[View]]:
    by_kappa: dict[float, dict[float, View]] = {}
    for view in views:  # sorted by (γ, κ, result, setting): the first view of each γ wins
        by_kappa.setdefault(view.kappa, {}).setdefault(view.gamma, view)
    kappa = min(by_kappa, key=lambda k: (-len(by_kappa[k]), k))
    chosen = by_kappa[kappa]
    return kappa, [chosen[g] for g in sorted(chosen)]


def _fields(results: Sequence[Result], views: Sequence[View], name: str) -> np.ndarray | None:
    """The input's fields [S, F, 2, H, W] at each view, or None where it is missing, not optimized or mis-shaped."""
    samples = []
    for view in views:
        result = results[view.result]
        index = next((i for i, spec in enumerate(result.inputs) if spec.name == name), None)
        if index is None or not result.optimized[view.unit, view.setting, index]:
            return None
        spec = result.inputs[index]
        try:
            samples.append(flow_fields(result.arrays[name][view.unit, view.setting], spec.kind, spec.layout))
        except MotionError:
            return None
    if len({sample.shape for sample in samples}) != 1:
        return None
    return np.stack(samples)


def unit_motion(entry: UnitEntry, results: Sequence[Result]) -> UnitMotion | None:
    """The first flow input's motion across the unit's γ; None without one or with fewer than two γ."""
    if not entry.views:
        return None
    kappa, views = _per_gamma(entry.views)
    if len(views) < 2:
        return None
    flow_inputs = [spec.name for spec in results[views[0].result].inputs if spec.kind in MOTION_KINDS]
    for name in flow_inputs:
        fields = _fields(results, views, name)
        if fields is not None:
            return UnitMotion(name, kappa, motion_across_settings(fields, [v.gamma for v in views]))
    return None
