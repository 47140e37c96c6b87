"""What a maximization reports: progress per step, and the raw optimized inputs in the model's own input space, per unit and setting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import MaximizeConfig, Setting


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


@dataclass
class UnitResult:
    objective: str
    setting: Setting
    inputs: dict[str, np.ndarray | None]
    """Optimized input per graph input, without the batch axis; None for inputs that do not feed the unit."""
    activation: float
    """The unit's raw value (weighted sum of its terms, unnormalized) at the final input."""
    best_activation: float
    losses: np.ndarray
    """The minimized loss (−normalized objective + regularizers) at every step."""
    activations: np.ndarray
    """The raw unit value at every step."""
    normalizer: float
    """ρ_l²·â_{l,c} used for this unit (1 when normalization was off)."""
    reference_max: float | None = None
    """â, when known (given or from a recording)."""
    stopped: str | None = None
    """Why optimization of this unit stopped early (e.g. a non-finite value), if it did."""


@dataclass
class MaximizeResult:
    units: list[str]
    settings: list[Setting]
    results: list[list[UnitResult]]
    """results[u][s] for unit u and setting s."""
    config: MaximizeConfig
    warnings: list[str] = field(default_factory=list)

    def stacked(self, input_name: str) -> np.ndarray:
        """[U, S, *input shape] (zeros where the input does not feed the unit)."""
        first = next(r.inputs[input_name] for row in self.results for r in row if r.inputs[input_name] is not None)
        out = np.zeros((len(self.units), len(self.settings), *first.shape), dtype=first.dtype)
        for u, row in enumerate(self.results):
            for s, result in enumerate(row):
                if result.inputs[input_name] is not None:
                    out[u, s] = result.inputs[input_name]
        return out

    def activation_table(self) -> np.ndarray:
        return np.array([[r.activation for r in row] for row in self.results])
