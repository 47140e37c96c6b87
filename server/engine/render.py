"""The optimization loop: many units × regularizer settings as one batch, Adam, jitter, projection."""

from __future__ import annotations

import hashlib
import math
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import ImportedModel, InputSpec, Layer

from . import native
from .config import MaximizeConfig, Setting
from .geometry import canonical, spatial_size
from .objectives import BatchObjective, Objective
from .regularizers import RegularizerWeights
from .results import Cancelled, MaximizeResult, StepReport, UnitResult
from .step import InputState, Kernels
from .transforms import Jitter
from .truncate import truncate


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
        kernels = Kernels(config.compiles_on(device.type), native=config.native_on(device.type))
        beta1, beta2 = config.betas
        decay = (config.final_learning_rate / config.learning_rate) ** (1.0 / max(config.iterations - 1, 1))
        lr = [config.learning_rate * decay**s / (1 - beta1 ** (s + 1)) for s in range(config.iterations)]
        bias2_sqrt = [math.sqrt(1 - beta2 ** (s + 1)) for s in range(config.iterations)]
        for i in self.inputs:
            i.prepare(kernels, lr, bias2_sqrt, self.kappa, self.gamma)
        if all(i.native is not None for i in self.inputs if i.used):
            # the native loop steps every input: the torch kernels only roll the first step's
            # input, and compiling them for that one call would cost seconds for nothing
            kernels.compiled = False
        bias2_sqrt = torch.tensor(bias2_sqrt, device=device).unbind()
        alive = torch.ones(size, dtype=torch.bool, device=device)
        ascent = torch.full((size,), -1.0, device=device)
        """d(loss)/d(objective): −1 for samples still running, 0 for stopped ones."""
        stopped: list[str | None] = [None] * size
        native_group = native.UpdateGroup(size, len(self.inputs)) if any(i.native is not None for i in self.inputs) else None
        history = np.zeros((config.iterations, 2, size), dtype=np.float32)
        """Per step: the loss (penalty − scaled objective) and the raw objective."""
        for step in range(config.iterations):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped at step {step} of {config.iterations}")
            feeds = [i.feed(kernels, step) for i in self.inputs]
            activations = dict(zip(self.layers, self.graph(*feeds)))
            scores = history[step]
            scores[:] = self.objective.values(activations)  # [scaled, raw]
            if not np.isfinite(scores[0]).all():
                alive, ascent = self._stop_non_finite(scores[0], alive, ascent, stopped, step)
            torch.autograd.backward(*self.objective.gradients(activations, ascent))
            penalties, states, constants, natively = [], [], [], []
            for i, feed in zip(self.inputs, feeds):
                if i.native is None:
                    if (state := i.state(feed.grad, step)) is not None:
                        states.append(state)
                        constants.append(i.constants)
                elif (arguments := i.native_arguments(feed.grad, step, alive)) is not None:
                    natively.append((i.native, arguments))
            if natively:
                penalties.append(native_group(natively))
            if states:
                penalties.append(kernels.update(states, constants, alive, self.kappa, self.gamma, bias2_sqrt[step],
                                                config.betas, config.eps).cpu().numpy())
            for i in self.inputs:
                i.advance()
            scores[0] = sum(penalties, np.zeros(size, dtype=np.float32)) - scores[0]
            if on_step is not None:
                on_step(StepReport(step, config.iterations, done, total, scores[1], scores[0]))
        return self._results(history[:, 0], history[:, 1], stopped)

    @staticmethod
    def _stop_non_finite(objective: np.ndarray, alive, ascent, stopped, step):
        bad = alive.cpu().numpy() & ~np.isfinite(objective)
        for sample in np.flatnonzero(bad).tolist():
            stopped[sample] = f"non-finite objective at step {step}; kept the last finite input"
        alive = alive & ~torch.from_numpy(bad).to(alive.device)
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
    """One graph input's batch of optimized values, its Adam moments, regularizer weights and jitter.

    The values live in two buffers: a step reads `x` and writes the other, because the
    native loop reads a pixel's old neighbours for R_TV while it writes; `advance` swaps them.
    """

    def __init__(self, spec: InputSpec, active: list[bool], limits, config: MaximizeConfig, generators, device) -> None:
        self.spec = spec
        self.config = config
        self.active = torch.tensor(active, device=device)
        self.weights = RegularizerWeights.for_input(spec, alpha=config.alpha, bound=config.bound,
                                                    v_ratio=config.v_ratio, motion_tv_factor=config.motion_tv_factor)
        self.jitter = Jitter(spec, limits)
        shape = tuple(spec.shape[1:])
        start = [torch.randn(shape, generator=g) * (config.init_scale * self.weights.bound) for g in generators]
        self.x = torch.stack(start).to(device) * self.active.reshape(-1, *[1] * len(shape)).float()
        self.spare = torch.empty_like(self.x)
        moments = canonical(self.x, spec).shape
        self.exp_avg = torch.zeros(moments, device=device)
        self.exp_avg_sq = torch.zeros(moments, device=device)
        self.used = bool(self.active.any())
        """Some sample of the chunk reads this input (otherwise it is fed zeros and never stepped)."""
        self.native: native.FusedUpdate | None = None
        """The native loop bound to this input, where it steps it (see `prepare`)."""
        self.shifts: list | None = None
        """Per step: a (dy, dx) pair every sample shares, or [B, 2] shifts (None: never moved)."""
        self.schedule: torch.Tensor | None = None
        """[steps, B, 2] shifts, for the native loop."""
        self.steps = 0
        """Iterations of the run `prepare` set this input up for."""
        self.step_sizes: Sequence[torch.Tensor] = ()
        self.feeds: tuple[torch.Tensor, torch.Tensor] | None = None
        """Two buffers the native loop writes the next step's jittered input into, in turn."""
        self.prepared: torch.Tensor | None = None
        """This step's jittered input, when the native loop wrote it in the last step."""
        self.stepped = False
        """The update wrote `spare` this step."""

    def prepare(self, kernels: Kernels, learning_rates: Sequence[float], bias2_sqrt: Sequence[float],
                kappa: torch.Tensor, gamma: torch.Tensor) -> None:
        """Shift schedule, step sizes and which path steps this input, for a run of len(learning_rates) steps.

        Adam's step at t is lr_t / (1 − β1^t) of the input's bound B."""
        config, steps = self.config, len(learning_rates)
        self.native, self.feeds, self.prepared = None, None, None
        self.steps = steps
        if self.jitter.moves:
            self.schedule = self.jitter.schedule(config.seed, steps)
            self.shifts = self.jitter.steps(self.schedule)
        sizes = torch.tensor(learning_rates, dtype=torch.float64) * self.weights.bound
        self.step_sizes = sizes.float().to(self.x.device).unbind()
        if self.used and kernels.native and native.supports(self.x, self.spec.layout, self.spec.kind):
            w = self.weights
            scalars = np.array([[w.alpha, w.bound, w.lambda_b, w.lambda_tv, *config.betas, config.eps, size, b2]
                                for size, b2 in zip(sizes.tolist(), bias2_sqrt)], dtype=np.float32)
            self.native = native.FusedUpdate(self.x, self.spare, self.exp_avg, self.exp_avg_sq, self.active, kappa, gamma,
                                             self.spec.layout, self.spec.kind, scalars, self.schedule)
            self.feeds = (torch.empty_like(self.x), torch.empty_like(self.x)) if self.jitter.moves else None
            self.native.trust(*(self.feeds or ()))

    def feed(self, kernels: Kernels, step: int) -> torch.Tensor:
        """This step's (jittered) input, a leaf whose gradient the update reads."""
        if not self.used:
            return self.x
        if self.prepared is not None:
            moved = self.prepared
        elif self.shifts is None:
            moved = self.x
        elif self.jitter.shared:
            moved = self.jitter.roll(self.x, self.shifts[step])
        else:
            moved = kernels.jitter(self.x, self.shifts[step].to(self.x.device), self.jitter.axes[0])
        return moved.detach().requires_grad_(True)

    @property
    def constants(self) -> tuple:
        """What the fused update needs to know of this input besides its tensors (see `update_inputs`)."""
        w = self.weights
        return (self.spec.layout, self.spec.kind, self.jitter.axes[0], w.alpha, w.bound, w.lambda_b, w.lambda_tv)

    def state(self, grad: torch.Tensor | None, step: int) -> InputState | None:
        """This step's tensors for the torch update; None when no sample reads this input.

        A shift every sample shares is undone here by one roll; per-sample shifts are
        undone in the update."""
        if not self.used or grad is None:
            return None
        self.stepped = True
        shifts = None if self.shifts is None else self.shifts[step]
        if shifts is not None and self.jitter.shared:
            grad, shifts = self.jitter.roll(grad, shifts, inverse=True), None
        elif shifts is not None:
            shifts = shifts.to(self.x.device)
        return InputState(self.x, self.spare, grad, self.exp_avg, self.exp_avg_sq, shifts, self.active, self.step_sizes[step])

    def native_arguments(self, grad: torch.Tensor | None, step: int, alive: torch.Tensor) -> tuple[int, ...] | None:
        """This step's addresses for the native loop (an `UpdateGroup` runs every input's at
        once), which also writes the next step's jittered input; None: nothing to step."""
        self.prepared = None
        if grad is None:  # the objective does not read this input after all: as on the torch path, no step
            return None
        self.stepped = True
        if self.feeds is not None and step + 1 < self.steps:
            self.prepared = self.feeds[step % 2]
        return self.native.arguments(self.x, self.spare, grad, self.prepared, alive, step)

    def advance(self) -> None:
        """After an update: the stepped values become the current ones."""
        if self.stepped:
            self.x, self.spare = self.spare, self.x
            self.stepped = False

    def result(self, sample: int) -> np.ndarray | None:
        return self.x[sample].cpu().numpy().copy() if self.active[sample] else None


def sample_seed(seed: int, objective: Objective, setting: Setting) -> int:
    """A sample's own seed, from what it optimizes: its result does not depend on its batch."""
    digest = hashlib.sha256(f"{seed}|{objective!r}|{setting.kappa!r}|{setting.gamma!r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
