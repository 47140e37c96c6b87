"""Configuration of one maximization call (the paper's defaults, each a parameter) and of one recording."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from kinetoscope.server.importer import ImportedModel

GiB = 1 << 30
MiB = 1 << 20
PARAMETERIZATIONS = ("pixel", "fourier")
"""How an optimized input is represented (`param/`): the paper's pixels, or a spatiotemporal spectrum."""
COMPILE_FROM = 64
"""Iterations from which `MaximizeConfig.compile=None` compiles the update on the CPU."""


_FLOAT_BOUNDS = {
    # field: (smallest allowed, whether the smallest itself is allowed)
    "learning_rate": (0.0, False), "final_learning_rate": (0.0, False), "alpha": (0.0, False), "bound": (0.0, False),
    "v_ratio": (0.0, False), "motion_tv_factor": (0.0, True), "init_scale": (0.0, True),
    "objective_weight": (-math.inf, False),
}


def check_number(name: str, value: object, least: float, inclusive: bool) -> None:
    """A finite number above `least` (or equal, when `inclusive`); a ValueError that names the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not (
            value >= least if inclusive else value > least):
        bound = f">= {least:g}" if inclusive else (f"> {least:g}" if math.isfinite(least) else "finite")
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")


@dataclass(frozen=True)
class Setting:
    """One regularizer setting: κ weights spatial variation, γ temporal variation (eq. 3)."""

    kappa: float = 1.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        for name in ("kappa", "gamma"):
            check_number(name, getattr(self, name), 0.0, inclusive=True)

    def __repr__(self) -> str:
        return f"κ={self.kappa:g},γ={self.gamma:g}"


@dataclass(frozen=True)
class MaximizeConfig:
    iterations: int = 256
    learning_rate: float = 0.05
    """Adam's first step size, as a fraction of each input's bound B."""
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    final_learning_rate: float = 0.005
    """The step decreases geometrically to this fraction of B at the last iteration."""
    alpha: float = 3.0
    bound: float | None = None
    """B; by default 160·(HI−LO)/255 from each input's value range."""
    v_ratio: float = 6.5
    motion_tv_factor: float = 10.0
    jitter: bool = True
    init_scale: float = 0.15
    """Standard deviation of the seeded random start, as a fraction of B (24 for 0..255 inputs).

    A start near zero sits where the units that need a particular colour or motion are
    switched off (ReLU below its threshold) and pass no gradient, so the optimizer never
    finds them. On the zoo's trained models (seeds 0–2, γ ∈ {0, 1}), 0.05 gave 3D clips
    moving their class's way in 42 of 54 runs and the cyan class never its colour; 0.15
    gives 52 of 54, and 59 of 60 two-stream appearances with their class's colour."""
    seed: int = 0
    max_batch: int | None = None
    """Samples (units × settings) per forward pass; by default from `memory_budget`."""
    memory_budget: int = 2 * GiB
    normalize: bool = True
    """Divide each unit by ρ_l²·â_{l,c} (eq. 1)."""
    compile: bool | None = None
    """How the per-input update (regularizer gradients, Adam, projection) runs. On the CPU
    it is one hand-fused C loop (`native.py`, built once per machine) unless this is False;
    where that loop is unavailable, or for inputs it does not support, torch.compile fuses
    the torch version: with True, or with None for runs of at least `COMPILE_FROM`
    iterations, where the one-off compile (seconds per input shape) pays for itself.
    False: the torch version, eagerly, everywhere."""
    objective_weight: float | None = None
    """Multiplies the normalized objective. λ_B and λ_TV average the regularizers over the
    H·W pixels of the input, while eq. 1 divides the unit by its ρ_l² receptive-field
    pixels; the default H·W puts both on the same per-pixel footing (None → H·W of the
    largest input)."""

    param: str = "pixel"
    """The parameterization (`PARAMETERIZATIONS`): "pixel", the paper's, stepped by the native
    loop on the CPU; or "fourier" (`param/fourier.py`), stepped through torch."""

    def __post_init__(self) -> None:
        if self.param not in PARAMETERIZATIONS:
            raise ValueError(f"param must be one of {', '.join(PARAMETERIZATIONS)}, got {self.param!r}")
        for name, (least, inclusive) in _FLOAT_BOUNDS.items():
            value = getattr(self, name)
            if value is not None:
                check_number(name, value, least, inclusive)
        for name in ("iterations", "max_batch"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not all(0 <= beta < 1 for beta in self.betas) or not self.eps > 0:
            raise ValueError(f"betas must lie in [0, 1) and eps be > 0, got {self.betas!r} and {self.eps!r}")

    def native_on(self, device: str) -> bool:
        return device == "cpu" and self.compile is not False

    def compiles_on(self, device: str) -> bool:
        if self.compile is not None:
            return self.compile
        return device == "cpu" and self.iterations >= COMPILE_FROM


Unit = tuple[str, int]
"""(layer tensor name, channel)."""


def usable_reference_maxima(maxima: Mapping[Unit, float]) -> tuple[dict[Unit, float], list[Unit]]:
    """(â per unit as eq. 1 divides by it, the units left at â = 1).

    A channel whose â is not above 0 (or not finite) never fired on the recorded clips;
    dividing by it would flip or blow up the objective, so it keeps â = 1."""
    usable = {unit: value for unit, value in maxima.items() if math.isfinite(value) and value > 0}
    return usable, sorted(unit for unit in maxima if unit not in usable)


def auto_batch(model: "ImportedModel", memory_budget: int, cap: int, *, activation_copies: int, input_copies: int) -> int:
    """Samples per forward pass whose float32 tensors fit `memory_budget`: every layer's activations
    `activation_copies` times (3 with gradients: the value, its gradient and what backward saves)
    and the inputs `input_copies` times, at most `cap`."""
    activations = sum(math.prod(layer.shape[1:]) for layer in model.catalog)
    inputs = sum(math.prod(spec.shape[1:]) for spec in model.inputs)
    per_sample = 4 * (activation_copies * activations + input_copies * inputs)
    return max(1, min(cap, memory_budget // max(per_sample, 1)))


BACKENDS = ("auto", "onnxruntime", "torch")
"""Who runs a recording's forward passes: onnxruntime on the original graph, the torch module, or the faster one."""


@dataclass(frozen=True)
class RecordConfig:
    top_k: int = 5
    histogram_bins: int = 64
    """An even number: doubling the bin width merges bins in pairs."""
    batch_size: int | None = None
    """Clips per forward pass; by default from `memory_budget`, at most `max_batch`."""
    max_batch: int = 32
    memory_budget: int = 512 * MiB
    """Bytes a batch may hold: its inputs and every intermediate activation of one forward pass."""
    backend: str = "auto"
    classes: int = 0
    """Labels the model is known to have (class_names); higher labels still widen per_class_max."""
    pending_clips: int | None = None
    """Clips gathered before the accumulators update (fewer, larger updates); by default up to 1 MiB per layer."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
