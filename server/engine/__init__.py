"""Activation maximization (Feichtenhofer et al., section 3), in Lucid's shape.

Modules, one job each:

* `objectives` — what to maximize: `Channel`, `Neuron`, `Logit`, combined with + and *;
  `BatchObjective` evaluates one per sample from a plan of `LayerSum`/`LayerPick` per layer.
* `param/` — how an input is represented: a raw variable plus its constraint. `pixel`
  (the paper's: values, projected onto the B-ball) and `fourier` (a spectrum over H, W and
  time scaled by 1/frequency, decorrelated colour for RGB), chosen by `MaximizeConfig.param`.
* `transforms` — what the network sees each step: a list (`standard_transforms`: jitter)
  composed into one shift per step and sample (`compose`).
* `regularizers` — R_B and R_TV (eq. 2, 3), their gradients and weights.
* `optim/` — Adam, once (`adam.py`), and the `Updater` that steps every input: torch
  (`step.py`, any parameterization, compiled where asked) or the native C loop
  (`native.py` + `fused_update.c`, pixel inputs on the CPU; one `struct kt_input` per
  input, mirrored by `native.NativeInput`), chosen once per run.
* `inputs` — one graph input of a run: its samples, seeded start, parameterization, shifts.
* `render` — `maximize`: batching units × settings into chunks (`config.auto_batch`), and
  the loop: feed (shifted values) → forward (`truncate`d graph) → objective's gradient →
  `Updater.step` → losses and activations per step → `MaximizeResult`.
* `config`, `results` — plain dataclasses, torch-free (with the â policy and `auto_batch`).

Names are loaded on first use (`kinetoscope.lazy`): the loop imports torch, the
configuration and result types do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kinetoscope.lazy import lazy_exports

_EXPORTS = {
    "Cancelled": ".results", "MaximizeResult": ".results", "StepReport": ".results", "UnitResult": ".results",
    "MaximizeConfig": ".config", "Setting": ".config",
    "Channel": ".objectives", "Logit": ".objectives", "Neuron": ".objectives", "Objective": ".objectives",
    "Scaled": ".objectives", "Sum": ".objectives",
    "maximize": ".render",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .config import MaximizeConfig, Setting
    from .objectives import Channel, Logit, Neuron, Objective, Scaled, Sum
    from .render import maximize
    from .results import Cancelled, MaximizeResult, StepReport, UnitResult
