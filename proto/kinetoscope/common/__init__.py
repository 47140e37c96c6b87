"""The vocabulary client, service and engine share: input kinds, value ranges, layouts, layers, results.

Defined once here so the three cannot drift apart. Imports numpy alone (no torch, onnx
or grpc), so a client that only talks to a remote server pays nothing for it.
"""

from .inputs import InputSpec
from .kinds import (
    APPEARANCE_KINDS, DEFAULT_RANGE, INPUT_KINDS, MOTION_KINDS, SEQUENCE_KINDS, STACKED_FLOW_KINDS, InputKind,
    infer_kind, norm_bound, parse_kind,
)
from .layers import Layer, find_layer
from .layout import (
    CANONICAL, LayoutError, axis_sizes, canonical_layout, from_canonical, infer_layout, sample_layout, to_canonical,
)
from .results import LayerMaxima, MaximizeOutcome, UnitOutcome

__all__ = [
    "APPEARANCE_KINDS", "CANONICAL", "DEFAULT_RANGE", "INPUT_KINDS", "InputKind", "InputSpec", "Layer", "LayerMaxima",
    "LayoutError", "MOTION_KINDS", "MaximizeOutcome", "SEQUENCE_KINDS", "STACKED_FLOW_KINDS", "UnitOutcome",
    "axis_sizes", "canonical_layout", "find_layer", "from_canonical", "infer_kind", "infer_layout",
    "norm_bound", "parse_kind", "sample_layout", "to_canonical",
]
