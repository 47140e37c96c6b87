"""Activation maximization (Feichtenhofer et al., section 3): objectives, regularizers, jitter, the loop."""

from .config import MaximizeConfig, Setting
from .objectives import Channel, Logit, Neuron, Objective, Scaled, Sum
from .render import Cancelled, StepReport, maximize
from .results import MaximizeResult, UnitResult

__all__ = [
    "Cancelled", "Channel", "Logit", "MaximizeConfig", "MaximizeResult", "Neuron", "Objective", "Scaled",
    "Setting", "StepReport", "Sum", "UnitResult", "maximize",
]
