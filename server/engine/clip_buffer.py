"""Clips buffered into batches: a preallocated array per graph input, with each clip's label and id.

The recorder and the analysis feed clips through the same buffer, so both check a
clip's inputs, shapes and dtypes alike.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import ModelProto

from kinetoscope.server.importer import ImportedModel, InputSpec


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



def input_dtypes(graph: ModelProto) -> dict[str, np.dtype]:
    """numpy dtype of each graph input (float32 where the graph does not say)."""
    found = {}
    for value in graph.graph.input:
        elem = value.type.tensor_type.elem_type
        found[value.name] = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype(np.float32)
    return found

