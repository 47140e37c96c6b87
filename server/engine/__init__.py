"""Activation maximization (Feichtenhofer et al., section 3): objectives, regularizers, jitter, the loop.

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
