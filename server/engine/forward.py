"""Forward backends for recording: per-clip maxima [B, C] of chosen layers, batched when batching is exact.

* `OrtForward` — onnxruntime (CPU) on the BN-folded graph, with a ReduceMax (or
  GlobalMaxPool) after each layer exposed as an extra output, so only the maxima leave
  the session; the batch axis is made dynamic when a probe shows the graph computes
  each clip of a batch as it does alone.
* `TorchForward` — the converted graph truncated after the layers, without autograd,
  on any torch device; maxima are taken on the device.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort
import torch
from onnx import ModelProto

from kinetoscope.server.importer import ImportedModel, Layer
from kinetoscope.server.importer.ort import MaxReduction, open_session, with_maxima

from .truncate import truncate

_LOGGER = logging.getLogger(__name__)

_PROBE_RTOL = 1e-4


def batchable(layers: Sequence[Layer]) -> bool:
    """A batch axis is only assumed where every layer has a leading axis of 1 at batch 1 and channels after it."""
    return all(layer.shape[0] == 1 and layer.channel_axis >= 1 for layer in layers)


def reduced_axes(layer: Layer, batched: bool) -> list[int]:
    """The axes a per-clip maximum reduces: all but the channel axis (and the batch axis when batched)."""
    keep = {layer.channel_axis, 0} if batched else {layer.channel_axis}
    return [axis for axis in range(len(layer.shape)) if axis not in keep]


class _Forward:
    """A forward pass returning per-clip maxima [B, C] per layer; runs `batch` clips at once (1: one by one)."""

    batch: int = 1

    def __init__(self, model: ImportedModel, layers: Sequence[Layer]) -> None:
        self.model, self.layers = model, list(layers)
        self.order = [spec.name for spec in model.inputs]

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        count = len(next(iter(feeds.values())))
        step = self.batch
        parts = [self.maxima({n: a[s : s + step] for n, a in feeds.items()}) for s in range(0, count, step)]
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate([part[i] for part in parts]) for i in range(len(self.layers))]

    def maxima(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """[B, C] float32 per layer for the clips in `feeds` (B ≤ batch)."""
        raise NotImplementedError

    def probe(self, batch: int) -> bool:
        """True when two different clips run together give what each gives alone."""
        if batch < 2 or not batchable(self.layers):
            return False
        rng = np.random.default_rng(0)
        feeds = {spec.name: rng.normal(0, 16, (2, *spec.shape[1:])).astype(np.float32) for spec in self.model.inputs}
        self.batch = 2
        try:
            together = self.maxima(feeds)
            alone = [self.maxima({n: a[i : i + 1] for n, a in feeds.items()}) for i in (0, 1)]
        except Exception as exc:  # noqa: BLE001 - any failure means: run clips one at a time
            _LOGGER.info("%s: a batch of 2 fails (%s); running clips one at a time", type(self).__name__, exc)
            return False
        finally:
            self.batch = 1
        for layer, value, first, second in zip(self.layers, together, *alone):
            expected = np.concatenate([first, second])
            scale = float(np.abs(expected).max()) or 1.0
            if value.shape != expected.shape or not np.allclose(value, expected, rtol=_PROBE_RTOL, atol=_PROBE_RTOL * scale):
                _LOGGER.info("%s: layer %s differs in a batch; running clips one at a time", type(self).__name__, layer.name)
                return False
        return True


class OrtForward(_Forward):
    """onnxruntime (CPU) on the BN-folded graph, with each layer's per-clip maximum as an extra output."""

    def __init__(self, model: ImportedModel, layers: Sequence[Layer], batch: int, device=None) -> None:
        super().__init__(model, layers)
        self.batched = batchable(self.layers) and batch > 1
        self._open()
        if self.batched and self.probe(batch):
            self.batch = batch
        elif self.batched:
            self.batched = False
            self._open()

    def _open(self) -> None:
        maxima = [MaxReduction(layer.name, tuple(reduced_axes(layer, self.batched)), len(layer.shape))
                  for layer in self.layers]
        graph, self.outputs = with_maxima(self.model.graph, maxima, dynamic_batch=self.batched)
        self.session = ort_session(graph)

    def maxima(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        values = self.session.run(self.outputs, {name: feeds[name] for name in self.order})
        return [np.asarray(v, np.float32).reshape(len(v) if self.batched else 1, layer.channels)
                for v, layer in zip(values, self.layers)]


class TorchForward(_Forward):
    """The converted graph truncated after the layers, without autograd, on `device`; maxima taken on the device."""

    def __init__(self, model: ImportedModel, layers: Sequence[Layer], batch: int, device: str | torch.device = "cpu") -> None:
        super().__init__(model, layers)
        self.device = torch.device(device)
        self.graph = truncate(model.module, [layer.name for layer in self.layers]).to(self.device)
        self.keep_batch = batchable(self.layers)
        self.batch = batch if self.probe(batch) else 1

    @torch.inference_mode()
    def maxima(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])).to(self.device) for name in self.order]
        out = []
        for layer, value in zip(self.layers, self.graph(*args)):
            axes = reduced_axes(layer, self.keep_batch)
            reduced = value.amax(dim=axes) if axes else value
            out.append(reduced.float().reshape(-1, layer.channels))
        return [value.cpu().numpy() for value in out]



def ort_session(model: ModelProto) -> ort.InferenceSession:
    """A fully optimized CPU session (the importer's verification sessions are unoptimized on purpose)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return open_session(model, options)
