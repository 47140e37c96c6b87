"""Per-clip, per-channel responses of chosen layers: the reduction the recorder uses for â.

A unit's response to a clip is its maximum over every axis but channel (positions in
space and time), exactly what `Recorder` accumulates; the forward pass is the
recorder's own torch backend (`TorchForward`: the graph truncated after the layers,
no autograd, batched when a probe shows batching is exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import ImportedModel, Layer

from ..clip_buffer import ClipBuffer
from ..forward import TorchForward


@dataclass
class ResponseFunction:
    """Responses [N, C] of `layers` for any batch of clips; built once, called on many variants of the clips."""

    model: ImportedModel
    layers: list[Layer]
    forward: TorchForward
    buffer: ClipBuffer

    def __call__(self, clips: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per layer name, float64 [N, C]: each clip's maximum over positions per channel."""
        self.buffer.check_batch(clips)
        feeds = {name: self.buffer.cast(name, clips[name]) for name in self.buffer.specs}
        return {layer.name: values.astype(np.float64) for layer, values in zip(self.layers, self.forward(feeds))}


def response_function(model: ImportedModel, layers: Sequence[str], *, batch_size: int = 32,
                      device: str | torch.device = "cpu") -> ResponseFunction:
    """A reusable forward for `layers` (names as the catalog or `model.layer` knows them)."""
    if not layers:
        raise ValueError("name at least one layer to measure")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chosen = list({layer.name: layer for layer in map(model.layer, layers)}.values())
    forward = TorchForward(model, chosen, batch_size, device)
    return ResponseFunction(model, chosen, forward, ClipBuffer(model, 1))


def layer_responses(model: ImportedModel, clips: Mapping[str, np.ndarray], layers: Sequence[str], *,
                    batch_size: int = 32, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Per layer, the responses [N, C] of N clips (arrays [N, *input shape without batch] per graph input)."""
    return response_function(model, layers, batch_size=batch_size, device=device)(clips)
