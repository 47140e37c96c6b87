"""What a maximization reports per unit and setting, and what a recording keeps per layer: one schema for the
engine, the service and the client.

The engine fills these fields, the service sends them (`UnitResult`, `LayerStatistics`
messages) and the client reads them back; each side adds only what is its own (the
engine its `Setting` and clip count, the client the unit's indices and resolved targets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np


@dataclass(kw_only=True)
class UnitOutcome:
    """One unit under one regularizer setting: its value at the end and along the way."""

    objective: str
    """A display label, e.g. "Channel('conv_fusion', 2)"."""
    activation: float
    """The unit's raw value (weighted sum of its terms, unnormalized) at the final input."""
    best_activation: float
    normalizer: float
    """ρ_l²·â_{l,c} used for this unit (1 when normalization was off)."""
    losses: np.ndarray
    """The minimized loss (−normalized objective + regularizers) at every step."""
    activations: np.ndarray
    """The raw unit value at every step."""
    reference_max: float | None = None
    """â, when known (given or from a recording)."""
    stopped: str | None = None
    """Why optimization of this unit stopped early (e.g. a non-finite value), if it did."""


U = TypeVar("U", bound=UnitOutcome)


@dataclass(kw_only=True)
class MaximizeOutcome(Generic[U]):
    """Every unit under every setting: results[u][s], with the units' labels and what went wrong along the way."""

    units: list[str]
    """Display labels per unit."""
    results: list[list[U]]
    warnings: list[str] = field(default_factory=list)

    def activation_table(self) -> np.ndarray:
        """[U, S] final raw activations."""
        return np.array([[r.activation for r in row] for row in self.results], dtype=np.float64)


@dataclass(kw_only=True)
class LayerMaxima:
    """One layer's statistics of per-clip maxima (each clip's maximum over positions, per channel), as a recording
    keeps them: the engine computes them, the service sends them, the client reads them back."""

    layer: str
    max: np.ndarray
    """[C] float32: â, the maximum over clips of the per-clip maximum (the paper's eq. 1 normalizer)."""
    mean: np.ndarray
    """[C] float32: the mean over clips of the per-clip maximum (not of the mean activation)."""
    top_values: np.ndarray
    """[C, k] float32: the k largest per-clip maxima, descending (ties: the earlier clip first)."""
    top_index: np.ndarray
    """[C, k] int64: stream positions (0-based) of those clips."""
    histogram: np.ndarray
    """[C, bins] counts of per-clip maxima over `histogram_edges`."""
    histogram_edges: np.ndarray
    """[bins + 1] float64, shared by the layer's channels; the last bin is closed on the right."""
    per_class_max: np.ndarray
    """[C, classes] float32: the maximum per-clip maximum over the clips of each label; NaN where no clip had it."""
    per_class_sum: np.ndarray | None = None
    """[C, classes] float64: the sum of per-clip maxima over the clips of each label (0 where no clip had it);
    with `per_class_count` it gives per-class means, which the maximum alone cannot."""
    per_class_count: np.ndarray | None = None
    """[classes] int64: clips recorded with each label. Both default to no classes (recordings made before them)."""

    def __post_init__(self) -> None:
        if self.per_class_sum is None:
            self.per_class_sum = np.zeros((self.channels, 0), np.float64)
        if self.per_class_count is None:
            self.per_class_count = np.zeros(self.per_class_sum.shape[1], np.int64)

    @property
    def channels(self) -> int:
        return int(self.max.shape[0])

    @property
    def per_class_mean(self) -> np.ndarray:
        """[C, classes] float64 mean per-clip maximum per label; NaN where no clip had it (or none was kept)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.per_class_count > 0, self.per_class_sum / np.maximum(self.per_class_count, 1), np.nan)
