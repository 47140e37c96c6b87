"""What a maximization reports per unit and setting, in one schema the engine, the service and the client share.

The engine fills these fields, the service sends them as `UnitResult` messages and the
client reads them back; each side adds only what is its own (the engine its `Setting`,
the client the unit's indices and resolved targets).
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
