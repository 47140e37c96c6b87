"""ImportOptions: how an import is checked; kept apart from the pipeline so a server can hold them without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from .limits import ImportLimits


@dataclass(frozen=True)
class ImportOptions:
    limits: ImportLimits = field(default_factory=ImportLimits)
    tolerance: float = 1e-4
    """Largest accepted relative error (max |Δ| / max |ref|) against onnxruntime."""
    seed: int = 0
    fold_batchnorm: bool = True
