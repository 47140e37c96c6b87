"""Check a MaximizeRequest against the stored model, its recordings and the limits, and turn it into engine objectives, settings, config and â."""

from __future__ import annotations

import difflib
import functools
import math
import operator
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kinetoscope.common import find_layer
from kinetoscope.server.engine import MaximizeConfig, Setting
from kinetoscope.server.engine.config import usable_reference_maxima
from kinetoscope.server.recordings import RecordingNotFound, RecordingStore
from kinetoscope.server.store import StoredModel
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .errors import BadRequest, LimitExceeded, NotAvailable, NotFound, PreconditionFailed
from .limits import ServiceLimits

if TYPE_CHECKING:
    from kinetoscope.server.engine import Objective

_MAX_NAMES = 40
PROGRESS_INTERVAL_S = 0.1
"""Progress events at the default cadence: at most one per this many seconds (plus each chunk's first and last step)."""
JOB_PROGRESS_PER_CHUNK = 16
"""A stored job's task at the default cadence: at most this many progress events per chunk, besides the last."""


class ProgressCadence:
    """Which optimizer steps a progress event goes out for: every `every` steps when the caller chose a number,
    else at most ten a second (and, with `per_chunk`, at most that many per chunk of samples). Each event wakes
    the thread that sends it, which on a machine with few cores takes a core from the engine mid-step: one every
    other step cost a one-unit call 13 % on two cores. A stored job keeps its events, so its tasks also bound
    them per chunk: a slow model would otherwise log one per step."""

    def __init__(self, every: int, interval_s: float = PROGRESS_INTERVAL_S, per_chunk: int | None = None) -> None:
        self.every, self.interval_s, self.per_chunk = every, interval_s, per_chunk
        self._last = -math.inf

    def due(self, step: int, iterations: int) -> bool:
        if step == 0 or step == iterations - 1:
            self._last = time.monotonic()
            return True
        if self.every:
            return step % self.every == 0
        if self.per_chunk and step % max(1, iterations // self.per_chunk):
            return False
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


@dataclass(frozen=True)
class MaximizePlan:
    objectives: list[Objective]
    settings: list[Setting]
    config: MaximizeConfig
    progress_every: int
    """The request's: a progress event every N steps; 0: at most ten a second (see ProgressCadence)."""
    reference_max: dict[tuple[str, int], float] = field(default_factory=dict)
    """â per (layer tensor name, channel) from the request's recording; empty without one."""
    warnings: list[str] = field(default_factory=list)
    targets: list[pb.Objective] = field(default_factory=list)
    """Per objective, its terms resolved (tensor names, weights, positions): what UnitResult.target reports."""

    @property
    def samples(self) -> int:
        return len(self.objectives) * len(self.settings)

    def cadence(self, per_chunk: int | None = None) -> ProgressCadence:
        """A fresh cadence for one run of this plan (`per_chunk`: see ProgressCadence)."""
        return ProgressCadence(self.progress_every, per_chunk=per_chunk)

    def describe(self, stored: StoredModel) -> str:
        return (f"maximize on {stored.name} ({stored.id}): {len(self.objectives)} unit(s) × {len(self.settings)} "
                f"setting(s) × {self.config.iterations} steps")


def plan_maximize(request: pb.MaximizeRequest, stored: StoredModel, limits: ServiceLimits,
                  recordings: RecordingStore | None = None) -> MaximizePlan:
    """Raises BadRequest / LimitExceeded / NotFound / PreconditionFailed naming what to change."""
    if request.recording and recordings is None:
        raise NotAvailable("this server keeps no recordings; leave `recording` empty")
    if not request.objectives:
        raise BadRequest("give at least one objective (a Target naming a layer and channel)")
    if len(request.objectives) > limits.max_units:
        raise LimitExceeded(f"{len(request.objectives)} objectives asked; this server takes at most {limits.max_units} per call")
    catalog = LayerCatalog(stored)
    resolved = [_objective(i, obj, catalog) for i, obj in enumerate(request.objectives)]
    objectives = [objective for objective, _ in resolved]
    settings = [_setting(i, s) for i, s in enumerate(request.settings)] or [Setting()]
    config = _config(request.options, limits)
    samples = len(objectives) * len(settings)
    if samples > limits.max_samples:
        raise LimitExceeded(
            f"{len(objectives)} units × {len(settings)} settings = {samples} samples; this server takes at most "
            f"{limits.max_samples} per call (split the request)"
        )
    elements = samples * catalog.input_elements()
    if elements > limits.max_input_elements:
        raise LimitExceeded(
            f"the optimized inputs of {samples} samples hold {elements:,} values; this server holds at most "
            f"{limits.max_input_elements:,} per call (ask for fewer units or settings at once)"
        )
    every = request.options.progress_every
    if every < 0:
        raise BadRequest(f"options.progress_every must be >= 0, got {every}")
    units = [(catalog.find(term.layer, "objectives")["name"], term.channel) for obj in objectives for term in obj.terms()]
    reference, warnings = reference_maxima(request.recording, recordings, stored, units) if request.recording else ({}, [])
    return MaximizePlan(objectives, settings, config, every, reference, warnings,
                        targets=[target for _, target in resolved])


def reference_maxima(recording: str, recordings: RecordingStore, stored: StoredModel,
                     units: list[tuple[str, int]]) -> tuple[dict[tuple[str, int], float], list[str]]:
    """â per unit (layer tensor name, channel) the objectives read, from a recording of this model (eq. 1);
    the engine's policy (`usable_reference_maxima`) decides which count, the reply says which do not."""
    try:
        found = recordings.get(recording)
    except RecordingNotFound as exc:
        raise NotFound(f"{exc} (ListRecordings lists them; Record makes one)") from None
    if found.model != stored.id:
        raise PreconditionFailed(f"recording {found.id} was made on model {found.meta.get('model_name', '')} ({found.model}), "
                                 f"not on {stored.name} ({stored.id}); record this model or leave `recording` empty")
    layers = list(dict.fromkeys(layer for layer, _ in units))
    missing = [layer for layer in layers if layer not in found.layers]
    if missing:
        raise PreconditionFailed(f"recording {found.id} has no layer {', '.join(map(repr, missing))} (it recorded "
                                 f"{', '.join(found.layers)}); record those layers or leave `recording` empty")
    recorded = found.maxima()
    reference, dead = usable_reference_maxima({unit: recorded[unit] for unit in dict.fromkeys(units)})
    warnings = []
    if dead:
        shown = ", ".join(f"{layer}:{channel}" for layer, channel in dead[:20]) + (" ..." if len(dead) > 20 else "")
        warnings.append(f"recording {found.id}: {len(dead)} channel(s) never rose above 0 on its {found.clips} clips "
                        f"({shown}); they are normalized by ρ_l² alone (â = 1)")
    return reference, warnings


class LayerCatalog:
    """The stored model's layers, looked up by tensor or node name."""

    def __init__(self, stored: StoredModel) -> None:
        self.stored = stored
        self.layers = stored.meta.get("catalog", [])
        self.outputs = stored.meta.get("outputs", [])

    def find(self, name: str, where: str) -> dict:
        entry = find_layer(self.layers, name)
        if entry is not None:
            return entry
        names = [entry["name"] for entry in self.layers]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        listed = ", ".join(names[:_MAX_NAMES]) + (f", ... ({len(names) - _MAX_NAMES} more; GetModel lists all)" if len(names) > _MAX_NAMES else "")
        raise BadRequest(f"{where}: model {self.stored.name!r} has no layer {name!r}.{hint} Valid layers: {listed}")

    def input_elements(self) -> int:
        return sum(math.prod(item["shape"][1:]) for item in self.stored.meta.get("inputs", []))


def _objective(index: int, objective: pb.Objective, catalog: LayerCatalog) -> tuple[Objective, pb.Objective]:
    """The engine's objective and its resolved description for UnitResult.target."""
    if not objective.terms:
        raise BadRequest(f"objectives[{index}] has no terms; give at least one Target")
    parts = [_term(f"objectives[{index}].terms[{t}]", term, catalog) for t, term in enumerate(objective.terms)]
    return functools.reduce(operator.add, [p.objective for p in parts]), pb.Objective(terms=[p.target for p in parts])


@dataclass(frozen=True)
class ResolvedTerm:
    """One term as the engine runs it and as results describe it (tensor name, weight and position filled in)."""

    objective: Objective
    target: pb.Target


def _term(where: str, target: pb.Target, catalog: LayerCatalog) -> ResolvedTerm:
    from kinetoscope.server.engine.objectives import Channel, Logit, Neuron  # noqa: PLC0415 - torch, only to plan a run

    name = target.layer
    if not name and target.kind == pb.Target.LOGIT and catalog.outputs:
        name = catalog.outputs[-1]
    if not name:
        raise BadRequest(f"{where}: name a layer (a tensor or node name from GetModel)")
    entry = catalog.find(name, where)
    channels = int(entry.get("channels", 0))
    if not 0 <= target.channel < channels:
        raise BadRequest(f"{where}: layer {entry['name']!r} has channels 0..{channels - 1}; channel {target.channel} is out of range")
    if target.kind == pb.Target.NEURON:
        grid = list(entry["shape"][2:])
        position = list(target.position) or None
        if position is not None and (len(position) != len(grid) or any(not 0 <= p < d for p, d in zip(position, grid))):
            raise BadRequest(f"{where}: position {position} is outside layer {entry['name']!r}'s grid {grid} "
                             "(give one index per axis after the channel axis, or none for the centre)")
        objective: Objective = Neuron(name, target.channel, position)
    elif target.kind == pb.Target.LOGIT:
        objective = Logit(name, target.channel)
    elif target.kind == pb.Target.CHANNEL:
        objective = Channel(name, target.channel)
    else:
        raise BadRequest(f"{where}: unknown target kind {target.kind}; use CHANNEL, NEURON or LOGIT")
    if target.position and target.kind != pb.Target.NEURON:
        raise BadRequest(f"{where}: only NEURON targets take a position")
    weight = target.weight if target.HasField("weight") else 1.0
    if not math.isfinite(weight) or weight == 0:
        raise BadRequest(f"{where}: weight {weight} must be finite and not 0 (leave it unset for 1; drop a term to remove it)")
    resolved = pb.Target(kind=target.kind, layer=entry["name"], channel=target.channel, weight=weight,
                         position=_position(target, entry))
    return ResolvedTerm(objective if weight == 1.0 else objective * weight, resolved)


def _position(target: pb.Target, entry: dict) -> list[int]:
    """The position a NEURON reads: as asked, or the centre of the layer's grid (as the engine picks it)."""
    if target.kind != pb.Target.NEURON:
        return []
    return list(target.position) or [d // 2 for d in entry["shape"][2:]]


def _setting(index: int, setting: pb.RegularizerSetting) -> Setting:
    """Unset κ and γ take the engine's defaults (1), not proto3's 0."""
    values = {name: getattr(setting, name) for name in ("kappa", "gamma") if setting.HasField(name)}
    try:
        return Setting(**values)
    except ValueError as exc:
        raise BadRequest(f"settings[{index}].{exc}") from None


def _config(options: pb.MaximizeOptions, limits: ServiceLimits) -> MaximizeConfig:
    values = {}
    for name in ("iterations", "learning_rate", "final_learning_rate", "alpha", "bound", "v_ratio", "motion_tv_factor",
                 "jitter", "init_scale", "seed", "normalize", "objective_weight", "max_batch", "param"):
        if options.HasField(name):
            values[name] = getattr(options, name)
    try:
        config = MaximizeConfig(**values)
    except ValueError as exc:
        raise BadRequest(f"options.{exc}") from None
    if config.iterations > limits.max_iterations:
        raise LimitExceeded(f"{config.iterations} iterations asked; this server runs at most {limits.max_iterations} per call")
    return config
