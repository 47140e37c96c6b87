"""From a layer name and a units spec to what Maximize optimizes, shared by `maximize` and `sweep`.

Both commands must agree on which layer a name means, when a layer counts as logits
and which channels a spec selects, or a sweep would not reproduce a single maximize.
"""

from __future__ import annotations

from kinetoscope.common import find_layer  # noqa: F401 - the commands look layers up through this module

from .types import LayerInfo, ModelInfo
from .units import parse_units

TARGET_KINDS = ("channel", "neuron", "logit")


def is_logit_layer(info: ModelInfo, layer: LayerInfo) -> bool:
    """A graph output of shape [N, classes]: its units are classes, addressed as logits."""
    return layer.name in info.outputs and len(layer.shape) == 2


def target_kind(info: ModelInfo, layer: LayerInfo, requested: str = "channel") -> str:
    """Logit outputs are always optimized as logits; other layers as asked."""
    return "logit" if is_logit_layer(info, layer) else requested


def resolve_units(info: ModelInfo, layer: LayerInfo, spec: str) -> list[int]:
    """Channel indices of `spec` (0,3,7 | 0-15 | all | class names on a logit layer); raises UnitSpecError."""
    return parse_units(spec, layer.channels, info.class_names if is_logit_layer(info, layer) else None)
