"""Record activation statistics over real clips: forward only, batched, into flat-memory accumulators.

The paper's eq. 1 divides a unit by â_{l,c}, its maximum activation over real clips;
recording computes â and what explains a unit beside it (top clips, per-class maximum,
a histogram). Two forward backends (forward.py) compute the same numbers:

* `onnxruntime` — the BN-folded graph (`ImportedModel.graph`), fully optimized, with a
  ReduceMax after each recorded layer exposed as an extra output: the per-clip maxima
  [B, C] leave the session instead of whole activations, and onnxruntime reduces with
  its own threads. The batch axis is made dynamic when a probe shows the graph computes
  each clip of a batch as it does alone.
* `torch` — the converted graph truncated after the recorded layers, without autograd,
  on any torch device.

`auto` takes onnxruntime on the CPU and torch on CUDA (bench/recording.py measures the
CPU choice; see bench/RESULTS.md).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from kinetoscope.server.importer import ImportedModel, Layer

from .clip_buffer import ClipBuffer
from .config import RecordConfig, auto_batch
from .forward import OrtForward, TorchForward
from .statistics import ChannelStatistics, LayerStatistics


def choose_backend(backend: str, device: str | torch.device) -> str:
    """`auto` → onnxruntime on the CPU, torch elsewhere (onnxruntime runs here on the CPU only)."""
    if backend != "auto":
        return backend
    return "onnxruntime" if torch.device(device).type == "cpu" else "torch"


class Recorder:
    """Streams clips through the model into per-layer accumulators; `finish` returns the statistics.

    Clips may come one at a time (`add_clip`, as the service receives them) or in arrays
    (`add`); either way they are buffered into batches of `batch_size` clips.
    """

    def __init__(self, model: ImportedModel, layers: Sequence[str], config: RecordConfig = RecordConfig(),
                 device: str | torch.device = "cpu") -> None:
        if not layers:
            raise ValueError("name at least one layer to record")
        self.model, self.config = model, config
        self.layers: list[Layer] = list({layer.name: layer for layer in map(model.layer, layers)}.values())
        self.batch_size = config.batch_size or auto_batch(model, config.memory_budget, config.max_batch,
                                                           activation_copies=1, input_copies=2)
        self.backend = choose_backend(config.backend, device)
        forward = OrtForward if self.backend == "onnxruntime" else TorchForward
        self.forward = forward(model, self.layers, self.batch_size, device)
        self.stats = {
            layer.name: ChannelStatistics(layer.name, layer.channels, top_k=config.top_k, bins=config.histogram_bins,
                                          classes=config.classes, chunk=config.pending_clips)
            for layer in self.layers
        }
        self.buffer = ClipBuffer(model, self.batch_size)
        self.clips = 0

    def add(self, inputs: Mapping[str, np.ndarray], labels: Sequence[int] | np.ndarray | None = None,
            ids: Sequence[str | None] | None = None) -> None:
        """Clips as arrays [N, *input shape without batch], one per graph input; labels -1 or None mean none.

        A clip without an id is known by its position in the stream ("0", "1", ...).
        """
        count = self.buffer.check_batch(inputs)
        labels = np.full(count, -1, np.int64) if labels is None else np.array(labels, np.int64).reshape(-1)
        if len(labels) != count or (ids is not None and len(ids) != count):
            raise ValueError(f"{count} clips but {len(labels)} labels and {count if ids is None else len(ids)} ids")
        done = 0
        while done < count:
            if self.buffer.size == 0 and count - done >= self.batch_size:  # a whole batch: no copy into the buffer
                end = done + self.batch_size
                feeds = {name: self.buffer.cast(name, inputs[name][done:end]) for name in self.buffer.specs}
                self._process(feeds, labels[done:end], None if ids is None else list(ids[done:end]))
                done = end
                continue
            done += self.buffer.put(inputs, labels, ids, done)
            if self.buffer.full:
                self._process(*self.buffer.take())

    def add_clip(self, inputs: Mapping[str, np.ndarray], label: int | None = None, clip_id: str | None = None) -> None:
        """One clip: per graph input an array of its shape without the batch axis (or with a batch of 1)."""
        arrays = {name: self.buffer.as_clip(name, value)[None] for name, value in inputs.items()}
        self.add(arrays, None if label is None else [label], None if clip_id is None else [clip_id])

    def finish(self) -> dict[str, LayerStatistics]:
        if self.buffer.size:
            self._process(*self.buffer.take())
        if self.clips == 0:
            raise ValueError("no clips were recorded: send at least one")
        return {name: acc.finish() for name, acc in self.stats.items()}

    def _process(self, feeds: Mapping[str, np.ndarray], labels: np.ndarray, ids: list[str | None] | None) -> None:
        index = np.arange(self.clips, self.clips + len(labels), dtype=np.int64)
        for layer, values in zip(self.layers, self.forward(feeds)):
            self.stats[layer.name].update(values, index, labels, ids)
        self.clips += len(labels)

    def __repr__(self) -> str:
        return (f"Recorder({self.model.id}, layers={[l.name for l in self.layers]}, backend={self.backend!r}, "
                f"batch={self.forward.batch}/{self.batch_size}, clips={self.clips})")
