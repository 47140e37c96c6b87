"""How an optimized input is represented (Lucid's `param`): a raw variable plus the constraint that maps
it into valid input values.

* `pixel` (the paper's, the default): the raw variable is the input itself, projected back onto
  the B-ball after every step; the native C loop serves it on the CPU.
* `fourier`: the raw variable is the input's spectrum over H, W and time (frames or flow
  fields), scaled by 1/frequency, with decorrelated colour for RGB inputs; the B-ball is part
  of the map. It runs through torch (autograd through the map), never the native loop.
"""

from __future__ import annotations

import torch

from kinetoscope.server.importer import InputSpec

from .base import Parameterization
from .fourier import FourierParam
from .pixel import PixelParam

PARAMETERIZATIONS: dict[str, type[Parameterization]] = {"pixel": PixelParam, "fourier": FourierParam}


def make_param(name: str, spec: InputSpec, start: torch.Tensor, bound: float) -> Parameterization:
    """The parameterization called `name`, starting at the input values `start` (model layout, [B, ...])."""
    try:
        kind = PARAMETERIZATIONS[name]
    except KeyError:
        raise ValueError(f"unknown parameterization {name!r}; use one of {', '.join(PARAMETERIZATIONS)}") from None
    return kind(spec, start, bound)


__all__ = ["PARAMETERIZATIONS", "FourierParam", "Parameterization", "PixelParam", "make_param"]
