"""What a maximization reports: progress per step, and the raw optimized inputs in the model's own input space, per unit and setting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetoscope.common import MaximizeOutcome, UnitOutcome

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


@dataclass(kw_only=True)
class UnitResult(UnitOutcome):
    """The shared fields of `kinetoscope.common.UnitOutcome`, with the engine's setting and input arrays."""

    setting: Setting
    inputs: dict[str, np.ndarray | None]
    """Optimized input per graph input, without the batch axis; None for inputs that do not feed the unit."""


@dataclass(kw_only=True)
class MaximizeResult(MaximizeOutcome[UnitResult]):
    """results[u][s] for unit u and setting s, with the settings and the config they ran under."""

    settings: list[Setting]
    config: MaximizeConfig

    def stacked(self, input_name: str) -> np.ndarray:
        """[U, S, *input shape] (zeros where the input does not feed the unit)."""
        first = next(r.inputs[input_name] for row in self.results for r in row if r.inputs[input_name] is not None)
        out = np.zeros((len(self.units), len(self.settings), *first.shape), dtype=first.dtype)
        for u, row in enumerate(self.results):
            for s, result in enumerate(row):
                if result.inputs[input_name] is not None:
                    out[u, s] = result.inputs[input_name]
        return out
