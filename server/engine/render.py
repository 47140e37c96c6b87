"""The optimization loop: many units × regularizer settings as one batch, Adam, jitter, projection."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import ImportedModel, InputSpec, Layer

from .config import MaximizeConfig, Setting
from .geometry import canonical, spatial_size
from .objectives import BatchObjective, Objective
from .regularizers import RegularizerWeights
from .results import MaximizeResult, UnitResult
from .step import InputState, Kernels
from .transforms import Jitter
from .truncate import truncate

_LOGGER = logging.getLogger(__name__)


class Cancelled(Exception):
    """The caller asked to stop (a cancelled RPC, an expired deadline, Ctrl-C)."""


@dataclass(frozen=True)
class StepReport:
    step: int
    iterations: int
    done: int
    """Samples finished in earlier chunks."""
    total: int
    activation: np.ndarray
    loss: np.ndarray


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
) -> MaximizeResult:
    """Synthesize the inputs that maximize each objective under each setting (paper eq. 1–3).

    Seeds and jitter are drawn on the CPU, so a unit's start and shifts are the same on
    every device; the graph, inputs and optimizer live on `device`.
    """
    objectives, settings = list(objectives), list(settings)
    if not objectives or not settings:
        raise ValueError("maximize needs at least one objective and one setting")
    reference_max = dict(reference_max or {})
    jobs = [(u, s) for u in range(len(objectives)) for s in range(len(settings))]
    chunk = config.max_batch or auto_batch(model, config)
    results: dict[tuple[int, int], UnitResult] = {}
    for start in range(0, len(jobs), chunk):
        part = jobs[start : start + chunk]
        run = _Run(model, [objectives[u] for u, _ in part], [settings[s] for _, s in part], config, reference_max, device)
        for job, result in zip(part, run.optimize(on_step, should_stop, start, len(jobs))):
            results[job] = result
    warnings = []
    if config.normalize and not reference_max:
        warnings.append("no recording or reference maxima given: units are normalized by ρ_l² only (â = 1)")
    table = [[results[(u, s)] for s in range(len(settings))] for u in range(len(objectives))]
    return MaximizeResult(units=[repr(o) for o in objectives], settings=settings, results=table, config=config, warnings=warnings)


def auto_batch(model: ImportedModel, config: MaximizeConfig) -> int:
    """Samples per forward pass so that activations (with gradients) stay within the memory budget."""
    per_sample = sum(math.prod(layer.shape[1:]) for layer in model.catalog) * 4 * 3
    return max(1, min(64, config.memory_budget // max(per_sample, 1)))


class _Run:
    """One chunk of samples optimized together."""

    def __init__(self, model, objectives, settings, config: MaximizeConfig, reference_max, device) -> None:
        self.model, self.objectives, self.settings, self.config = model, objectives, settings, config
        self.device = torch.device(device)
        self.layers = list(dict.fromkeys(layer for obj in objectives for layer in obj.layers()))
        self.catalog = {name: model.layer(name) for name in self.layers}
        self.graph = truncate(model.module, [layer.name for layer in self.catalog.values()]).to(self.device)
        self.reference = reference_max
        weight = config.objective_weight
        if weight is None:
            weight = float(max(math.prod(spatial_size(spec)) for spec in model.inputs))
        self.scales = {
            (term.layer, term.channel): weight / (self._normalizer(term.layer, term.channel) if config.normalize else 1.0)
            for obj in objectives for term in obj.terms()
        }
        self.objective = BatchObjective(objectives, self.scales)
        size = len(objectives)
        self.generators = [torch.Generator().manual_seed(sample_seed(config.seed, o, s)) for o, s in zip(objectives, settings)]
        self.kappa = torch.tensor([s.kappa for s in settings], dtype=torch.float32, device=self.device)
        self.gamma = torch.tensor([s.gamma for s in settings], dtype=torch.float32, device=self.device)
        self.inputs: list[OptimizedInput] = [
            OptimizedInput(spec, self._feeds(spec), self._strides(spec), config, self.generators, self.device) for spec in model.inputs
        ]
        assert all(len(i.active) == size for i in self.inputs)

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
        kernels = Kernels(config.compiles_on(device.type))
        beta1, beta2 = config.betas
        decay = (config.final_learning_rate / config.learning_rate) ** (1.0 / max(config.iterations - 1, 1))
        lr = torch.tensor([config.learning_rate * decay**s / (1 - beta1 ** (s + 1)) for s in range(config.iterations)],
                          dtype=torch.float64)
        step_sizes = [(lr * i.weights.bound).float().to(device).unbind() for i in self.inputs]
        bias2_sqrt = torch.tensor([math.sqrt(1 - beta2 ** (s + 1)) for s in range(config.iterations)], device=device).unbind()
        schedules = [i.jitter.steps(config.seed, config.iterations) if i.jitter.moves else None for i in self.inputs]
        alive = torch.ones(size, dtype=torch.bool, device=device)
        ascent = torch.full((size,), -1.0, device=device)
        """d(loss)/d(objective): −1 for samples still running, 0 for stopped ones."""
        stopped: list[str | None] = [None] * size
        history = np.zeros((config.iterations, 2, size), dtype=np.float32)
        """Per step: the loss (penalty − scaled objective) and the raw objective."""
        for step in range(config.iterations):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped at step {step} of {config.iterations}")
            shifts = [None if s is None else s[step] for s in schedules]
            feeds = [i.feed(kernels, shift) for i, shift in zip(self.inputs, shifts)]
            values = self.objective.evaluate(dict(zip(self.layers, self.graph(*feeds))))  # [scaled, raw]
            if not bool(torch.isfinite(values[0]).all()):
                alive, ascent = self._stop_non_finite(values[0], alive, ascent, stopped, step)
            values[0].backward(ascent)
            values = values.detach()
            states = [i.state(feed.grad, shift, sizes[step]) for i, feed, shift, sizes in zip(self.inputs, feeds, shifts, step_sizes)]
            used = [k for k, state in enumerate(states) if state is not None]
            if used:
                values[0] -= kernels.update([states[k] for k in used], [self.inputs[k].constants for k in used], alive,
                                            self.kappa, self.gamma, bias2_sqrt[step], config.betas, config.eps)
            history[step] = values.cpu().numpy()
            history[step, 0] *= -1
            if on_step is not None:
                on_step(StepReport(step, config.iterations, done, total, history[step, 1], history[step, 0]))
        return self._results(history[:, 0], history[:, 1], stopped)

    @staticmethod
    def _stop_non_finite(objective, alive, ascent, stopped, step):
        bad = alive & ~torch.isfinite(objective)
        for sample in torch.nonzero(bad).flatten().tolist():
            stopped[sample] = f"non-finite objective at step {step}; kept the last finite input"
        alive = alive & ~bad
        return alive, torch.where(alive, ascent, 0.0)

    @torch.no_grad()
    def _results(self, losses, values, stopped) -> list[UnitResult]:
        acts = dict(zip(self.layers, self.graph(*[i.x for i in self.inputs])))
        final = self.objective.evaluate(acts)[1].cpu().numpy()
        out = []
        for sample, obj in enumerate(self.objectives):
            terms = obj.terms()
            first = terms[0]
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


class OptimizedInput:
    """One graph input's batch of optimized values, its Adam moments, regularizer weights and jitter."""

    def __init__(self, spec: InputSpec, active: list[bool], limits, config: MaximizeConfig, generators, device) -> None:
        self.spec = spec
        self.active = torch.tensor(active, device=device)
        self.weights = RegularizerWeights.for_input(spec, alpha=config.alpha, bound=config.bound,
                                                    v_ratio=config.v_ratio, motion_tv_factor=config.motion_tv_factor)
        self.jitter = Jitter(spec, limits)
        shape = tuple(spec.shape[1:])
        start = [torch.randn(shape, generator=g) * (config.init_scale * self.weights.bound) for g in generators]
        self.x = torch.stack(start).to(device) * self.active.reshape(-1, *[1] * len(shape)).float()
        moments = canonical(self.x, spec).shape
        self.exp_avg = torch.zeros(moments, device=device)
        self.exp_avg_sq = torch.zeros(moments, device=device)
        self.used = bool(self.active.any())
        """Some sample of the chunk reads this input (otherwise it is fed zeros and never stepped)."""

    def feed(self, kernels: Kernels, shifts: torch.Tensor | tuple[int, int] | None) -> torch.Tensor:
        """This step's (jittered) input, a leaf whose gradient the update reads."""
        if not self.used:
            return self.x
        if shifts is None:
            moved = self.x
        elif self.jitter.shared:
            moved = self.jitter.roll(self.x, shifts)
        else:
            moved = kernels.jitter(self.x, shifts.to(self.x.device), self.jitter.axes[0])
        return moved.detach().requires_grad_(True)

    @property
    def constants(self) -> tuple:
        """What the fused update needs to know of this input besides its tensors (see `update_inputs`)."""
        w = self.weights
        return (self.spec.layout, self.spec.kind, self.jitter.axes[0], w.alpha, w.bound, w.lambda_b, w.lambda_tv)

    def state(self, grad: torch.Tensor | None, shifts: torch.Tensor | tuple[int, int] | None,
              step_size: torch.Tensor) -> InputState | None:
        """This step's tensors for the fused update; None when no sample reads this input.

        `step_size` is Adam's lr / (1 − β1^t) in this input's units. A shift every sample
        shares is undone here by one roll; per-sample shifts are undone in the update."""
        if not self.used or grad is None:
            return None
        if shifts is not None and self.jitter.shared:
            grad, shifts = self.jitter.roll(grad, shifts, inverse=True), None
        elif shifts is not None:
            shifts = shifts.to(self.x.device)
        return InputState(self.x, grad, self.exp_avg, self.exp_avg_sq, shifts, self.active, step_size)

    def result(self, sample: int) -> np.ndarray | None:
        return self.x[sample].cpu().numpy().copy() if self.active[sample] else None


def sample_seed(seed: int, objective: Objective, setting: Setting) -> int:
    """A sample's own seed, from what it optimizes: its result does not depend on its batch."""
    digest = hashlib.sha256(f"{seed}|{objective!r}|{setting.kappa!r}|{setting.gamma!r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
