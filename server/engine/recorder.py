"""Record activation statistics over real clips: forward only, batched, into flat-memory accumulators.

The paper's eq. 1 divides a unit by â_{l,c}, its maximum activation over real clips;
recording computes â and what explains a unit beside it (top clips, per-class maximum,
a histogram). Two forward backends compute the same numbers:

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

import logging
from typing import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import ModelProto

from kinetoscope.server.importer import ImportedModel, InputSpec, Layer
from kinetoscope.server.importer.graph import INTERNAL_PREFIX
from kinetoscope.server.importer.ort import open_session

from .config import BACKENDS, RecordConfig, auto_batch
from .statistics import ChannelStatistics, LayerStatistics
from .truncate import truncate

_LOGGER = logging.getLogger(__name__)

_PROBE_RTOL = 1e-4



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


class ClipBuffer:
    """A preallocated batch of clips per graph input, with their labels and ids."""

    def __init__(self, model: ImportedModel, capacity: int) -> None:
        self.specs = {spec.name: spec for spec in model.inputs}
        self.dtypes = input_dtypes(model.graph)
        self.capacity = capacity
        self.arrays = {name: np.empty((capacity, *spec.shape[1:]), self.dtypes[name]) for name, spec in self.specs.items()}
        self.labels = np.full(capacity, -1, np.int64)
        self.ids: list[str | None] = []
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def as_clip(self, name: str, value: np.ndarray) -> np.ndarray:
        spec = self._spec(name)
        value = np.asarray(value)
        if value.shape == tuple(spec.shape) and spec.shape[0] == 1:
            value = value[0]
        if value.shape != tuple(spec.shape[1:]):
            raise ValueError(f"input {name!r}: a clip has shape {list(value.shape)}; expected {list(spec.shape[1:])}")
        return value

    def check_batch(self, inputs: Mapping[str, np.ndarray]) -> int:
        missing = [name for name in self.specs if name not in inputs]
        if missing:
            raise ValueError(f"clips lack input(s) {', '.join(map(repr, missing))}; the model's inputs are "
                             f"{', '.join(self.specs)}")
        counts = set()
        for name, value in inputs.items():
            spec = self._spec(name)
            if np.ndim(value) != len(spec.shape) or tuple(np.shape(value)[1:]) != tuple(spec.shape[1:]):
                raise ValueError(f"input {name!r}: clips have shape {list(np.shape(value))}; expected "
                                 f"[N, {', '.join(map(str, spec.shape[1:]))}]")
            if not np.issubdtype(np.asarray(value).dtype, np.number):
                raise ValueError(f"input {name!r}: clips must be numbers, not {np.asarray(value).dtype}")
            counts.add(len(value))
        if len(counts) != 1:
            raise ValueError(f"the inputs hold different numbers of clips: {sorted(counts)}")
        return counts.pop()

    def cast(self, name: str, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=self.dtypes[name])

    def put(self, inputs: Mapping[str, np.ndarray], labels: np.ndarray, ids: Sequence[str | None] | None,
            start: int) -> int:
        """Copies clips from `start` on until the buffer is full; returns how many it took."""
        take = min(self.capacity - self.size, len(labels) - start)
        end = self.size + take
        for name, array in self.arrays.items():
            array[self.size : end] = inputs[name][start : start + take]
        self.labels[self.size : end] = labels[start : start + take]
        self.ids.extend([None] * take if ids is None else [None if i is None else str(i) for i in ids[start : start + take]])
        self.size = end
        return take

    def take(self) -> tuple[dict[str, np.ndarray], np.ndarray, list[str | None]]:
        size = self.size
        feeds = {name: array[:size] for name, array in self.arrays.items()}
        labels, ids = self.labels[:size].copy(), self.ids
        self.size, self.ids = 0, []
        return feeds, labels, ids

    def _spec(self, name: str) -> InputSpec:
        if name not in self.specs:
            raise ValueError(f"the model has no input {name!r}; its inputs are {', '.join(self.specs)}")
        return self.specs[name]


# ---------------------------------------------------------------- forward backends


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
        graph, self.outputs = with_clip_maxima(self.model.graph, self.layers, batched=self.batched)
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


def with_clip_maxima(graph: ModelProto, layers: Sequence[Layer], *, batched: bool) -> tuple[ModelProto, list[str]]:
    """A copy of `graph` that also returns each layer's maximum over all axes but channel (and batch, when `batched`).

    With `batched`, every input's leading axis becomes symbolic and the shapes inferred
    at batch 1 are dropped (onnxruntime infers them again).
    """
    copy = ModelProto()
    copy.CopyFrom(graph)
    opset = next((o.version for o in copy.opset_import if o.domain in ("", "ai.onnx")), 0)
    outputs = []
    for index, layer in enumerate(layers):
        axes = reduced_axes(layer, batched)
        if not axes:
            outputs.append(layer.name)
            continue
        name = f"{INTERNAL_PREFIX}clip_max/{index}/{layer.name}"
        if list(axes) == list(range(2, len(layer.shape))):
            # every axis after batch and channel: onnxruntime's pooling kernel does in one pass what its
            # ReduceMax does slower ([B, C, 1, ...] out; `maxima` reshapes)
            copy.graph.node.append(onnx.helper.make_node("GlobalMaxPool", [layer.name], [name], name=name))
            outputs.append(name)
            continue
        inputs = [layer.name]
        attributes = {"keepdims": 0}
        if opset >= 18:
            inputs.append(f"{name}/axes")
            copy.graph.initializer.append(onnx.numpy_helper.from_array(np.array(axes, np.int64), inputs[-1]))
        else:
            attributes["axes"] = axes
        copy.graph.node.append(onnx.helper.make_node("ReduceMax", inputs, [name], name=name, **attributes))
        outputs.append(name)
    present = {out.name for out in copy.graph.output}
    for name in dict.fromkeys(outputs):
        if name not in present:
            copy.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    if batched:
        _dynamic_batch(copy)
    return copy, outputs


def with_outputs(graph: ModelProto, names: Sequence[str], *, dynamic_batch: bool) -> ModelProto:
    """A copy of `graph` that also returns the tensors `names`; with `dynamic_batch`, a symbolic leading input axis."""
    copy = ModelProto()
    copy.CopyFrom(graph)
    present = {out.name for out in copy.graph.output}
    for name in names:
        if name not in present:
            copy.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    if dynamic_batch:
        _dynamic_batch(copy)
    return copy


def _dynamic_batch(model: ModelProto) -> None:
    weights = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in weights and value.type.tensor_type.shape.dim:
            dim = value.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = "batch"
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")


def input_dtypes(graph: ModelProto) -> dict[str, np.dtype]:
    """numpy dtype of each graph input (float32 where the graph does not say)."""
    found = {}
    for value in graph.graph.input:
        elem = value.type.tensor_type.elem_type
        found[value.name] = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype(np.float32)
    return found


def ort_session(model: ModelProto) -> ort.InferenceSession:
    """A fully optimized CPU session (the importer's verification sessions are unoptimized on purpose)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return open_session(model, options)
