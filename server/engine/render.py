"""The optimization loop: many units × regularizer settings as one batch, each step a forward pass,
the objective's gradient, and one `Updater` call."""

from __future__ import annotations

import logging
import math
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import ImportedModel, InputSpec

from .config import MaximizeConfig, Setting, auto_batch, usable_reference_maxima
from .geometry import spatial_size
from .inputs import OptimizedInput, sample_seed
from .objectives import BatchObjective, Objective
from .optim.updater import choose_updater
from .results import Cancelled, MaximizeResult, StepReport, UnitResult
from .transforms import TransformFactory, compose, standard_transforms
from .truncate import truncate

_LOGGER = logging.getLogger(__name__)
MAX_AUTO_BATCH = 64


def maximize(
    model: ImportedModel,
    objectives: Sequence[Objective],
    settings: Sequence[Setting] = (Setting(),),
    config: MaximizeConfig = MaximizeConfig(),
    *,
    reference_max: Mapping[tuple[str, int], float] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
    transforms: TransformFactory = standard_transforms,
) -> MaximizeResult:
    """Synthesize the inputs that maximize each objective under each setting (paper eq. 1–3).

    Seeds and jitter are drawn on the CPU, so a unit's start and shifts are the same on
    every device; the graph, inputs and optimizer live on `device`. `reference_max` gives
    â per (layer tensor name, channel); values not above 0 count as 1. `transforms` builds
    each input's transform list from the input and its samples' shift limits.
    """
    objectives, settings = list(objectives), list(settings)
    if not objectives or not settings:
        raise ValueError("maximize needs at least one objective and one setting")
    reference_max, _ = usable_reference_maxima(reference_max or {})
    jobs = [(u, s) for u in range(len(objectives)) for s in range(len(settings))]
    chunk = config.max_batch or auto_batch(model, config.memory_budget, MAX_AUTO_BATCH, activation_copies=3, input_copies=6)
    results: dict[tuple[int, int], UnitResult] = {}
    for start in range(0, len(jobs), chunk):
        part = jobs[start : start + chunk]
        run = _Run(model, [objectives[u] for u, _ in part], [settings[s] for _, s in part], config, reference_max, device,
                   transforms)
        for job, result in zip(part, run.optimize(on_step, should_stop, start, len(jobs))):
            results[job] = result
    warnings = []
    if config.normalize and not reference_max:
        warnings.append("no recording or reference maxima given: units are normalized by ρ_l² only (â = 1)")
    table = [[results[(u, s)] for s in range(len(settings))] for u in range(len(objectives))]
    return MaximizeResult(units=[repr(o) for o in objectives], settings=settings, results=table, config=config, warnings=warnings)


class _Run:
    """One chunk of samples optimized together."""

    def __init__(self, model: ImportedModel, objectives: list[Objective], settings: list[Setting], config: MaximizeConfig,
                 reference_max: dict[tuple[str, int], float], device, transforms: TransformFactory) -> None:
        self.model, self.objectives, self.settings, self.config = model, objectives, settings, config
        self.device = torch.device(device)
        self.layers = list(dict.fromkeys(layer for obj in objectives for layer in obj.layers()))
        self.catalog = {name: model.layer(name) for name in self.layers}
        self.graph = truncate(model.module, [layer.name for layer in self.catalog.values()]).to(self.device)
        self.reference = reference_max
        weight = config.objective_weight
        if weight is None:
            weight = float(max(math.prod(spatial_size(spec)) for spec in model.inputs))
        scales = {
            (term.layer, term.channel): weight / (self._normalizer(term.layer, term.channel) if config.normalize else 1.0)
            for obj in objectives for term in obj.terms()
        }
        self.objective = BatchObjective(objectives, scales)
        generators = [torch.Generator().manual_seed(sample_seed(config.seed, o, s)) for o, s in zip(objectives, settings)]
        self.kappa = torch.tensor([s.kappa for s in settings], dtype=torch.float32, device=self.device)
        self.gamma = torch.tensor([s.gamma for s in settings], dtype=torch.float32, device=self.device)
        self.inputs = [
            OptimizedInput(spec, self._feeds(spec), compose(spec, transforms(spec, self._strides(spec))), config, generators,
                           self.device)
            for spec in model.inputs
        ]

    def _normalizer(self, layer_name: str, channel: int) -> float:
        layer = self.model.layer(layer_name)
        rho2 = max((rf.get("H", 1.0) * rf.get("W", 1.0) for rf in layer.receptive_field.values()), default=1.0)
        return rho2 * self.reference.get((layer.name, channel), 1.0)

    def _feeds(self, spec: InputSpec) -> list[bool]:
        return [any(spec.name in self.catalog[l].inputs for l in obj.layers()) for obj in self.objectives]

    def _strides(self, spec: InputSpec) -> list[tuple[int, int]]:
        limits = []
        for obj in self.objectives:
            strides = [self.catalog[l].stride.get(spec.name, {}) for l in obj.layers()]
            h = min((s.get("H", 1) for s in strides if s), default=1) if self.config.jitter else 1
            w = min((s.get("W", 1) for s in strides if s), default=1) if self.config.jitter else 1
            limits.append((int(h), int(w)))
        return limits

    def optimize(self, on_step, should_stop, done: int, total: int) -> list[UnitResult]:
        """Run the iterations. The loop is kept to few tensor operations: on a small network
        each one costs a noticeable share of a forward and backward pass."""
        config, size, device = self.config, len(self.objectives), self.device
        for i in self.inputs:
            i.plan_shifts(config.seed, config.iterations)
        updater = choose_updater(config, device, self.inputs, self.kappa, self.gamma)
        alive = torch.ones(size, dtype=torch.bool, device=device)
        ascent = torch.full((size,), -1.0, device=device)
        """d(loss)/d(objective): −1 for samples still running, 0 for stopped ones."""
        stopped: list[str | None] = [None] * size
        losses = np.zeros((config.iterations, size), dtype=np.float32)
        """Per step: the loss, penalty − scaled objective."""
        values = np.zeros((config.iterations, size), dtype=np.float32)
        """Per step: the raw objective."""
        for step in range(config.iterations):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped at step {step} of {config.iterations}")
            feeds = [i.feed(updater.kernels, step) for i in self.inputs]
            activations = dict(zip(self.layers, self.graph(*feeds)))
            scaled, values[step] = self.objective.values(activations)
            if not np.isfinite(scaled).all():
                alive, ascent = self._stop_non_finite(scaled, alive, ascent, stopped, step)
            torch.autograd.backward(*self.objective.gradients(activations, ascent))
            losses[step] = updater.step(step, [feed.grad for feed in feeds], alive) - scaled
            if on_step is not None:
                on_step(StepReport(step, config.iterations, done, total, values[step], losses[step]))
        return self._results(losses, values, stopped)

    @staticmethod
    def _stop_non_finite(objective: np.ndarray, alive, ascent, stopped, step):
        bad = alive.cpu().numpy() & ~np.isfinite(objective)
        for sample in np.flatnonzero(bad).tolist():
            stopped[sample] = f"non-finite objective at step {step}; kept the last finite input"
        alive = alive & ~torch.from_numpy(bad).to(alive.device)
        return alive, torch.where(alive, ascent, 0.0)

    @torch.no_grad()
    def _results(self, losses, values, stopped) -> list[UnitResult]:
        acts = dict(zip(self.layers, self.graph(*[i.param.values for i in self.inputs])))
        final = self.objective.evaluate(acts)[1].cpu().numpy()
        out = []
        for sample, obj in enumerate(self.objectives):
            first = obj.terms()[0]
            ref = self.reference.get((self.catalog[first.layer].name, first.channel))
            normalizer = self._normalizer(first.layer, first.channel) if self.config.normalize else 1.0
            trajectory = values[:, sample]
            out.append(UnitResult(
                objective=repr(obj), setting=self.settings[sample],
                inputs={i.spec.name: i.result(sample) for i in self.inputs},
                activation=float(final[sample]),
                best_activation=_best(np.append(trajectory, final[sample])),
                losses=losses[:, sample].copy(), activations=trajectory.copy(),
                normalizer=normalizer, reference_max=ref, stopped=stopped[sample],
            ))
        return out


def _best(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else float("nan")
