"""Streaming per-channel statistics of per-clip maxima: â, mean, top clips, histogram, per-class maximum and sum.

Every statistic here is of one number per clip and channel: the channel's maximum over
all positions of the layer (T, H, W) for that clip. The accumulators hold
O(channels × (top_k + bins + classes)) numbers, however many clips stream through,
and no activation outlives the batch it came in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kinetoscope.common import LayerMaxima

from .native_build import enabled
from .native_statistics import NativeStatistics


@dataclass(kw_only=True)
class LayerStatistics(LayerMaxima):
    """One layer's statistics over the recorded clips (C channels, k = min(top_k, clips)); the fields shared with
    the client are `kinetoscope.common.LayerMaxima`'s."""

    clips: int
    top_ids: np.ndarray
    """[C, k] str: the ids the clips came with."""

    ARRAYS = ("max", "mean", "top_values", "top_index", "top_ids", "histogram", "histogram_edges", "per_class_max",
              "per_class_sum", "per_class_count")
    OPTIONAL = ("per_class_sum", "per_class_count")
    """Arrays that recordings stored before they existed lack; they load empty (no classes)."""

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_arrays(cls, layer: str, clips: int, arrays) -> "LayerStatistics":
        """From `to_arrays`' names; a mapping without the OPTIONAL arrays gives them empty."""
        present = {name: np.asarray(arrays[name]) for name in cls.ARRAYS if name not in cls.OPTIONAL or name in arrays}
        return cls(layer=layer, clips=int(clips), **present)


class TopClips:
    """The k largest values per channel with their clip positions and ids; ties go to the earlier clip."""

    def __init__(self, channels: int, k: int) -> None:
        if k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}")
        self.k = k
        self.buffers = (np.empty((channels, k), np.float32), np.empty((channels, k), np.int64))
        """Room for k entries per channel, descending; the first `kept` columns are in use."""
        self.kept = 0
        self.ids: dict[int, str] = {}
        """Ids of the clips now in some channel's top k only (the rest are dropped at every update)."""

    @property
    def values(self) -> np.ndarray:
        """[C, kept] float32, descending per channel."""
        return self.buffers[0][:, : self.kept]

    @property
    def index(self) -> np.ndarray:
        """[C, kept] int64 stream positions of those values."""
        return self.buffers[1][:, : self.kept]

    def update(self, values: np.ndarray, index: np.ndarray, ids: Sequence[str | None] | None = None) -> None:
        """values [B, C] for clips at stream positions index [B] (ascending, after every clip seen before).

        A clip without an id (None) is known by its position.
        """
        values = values.T.astype(np.float32, copy=False)
        index = np.asarray(index, np.int64)
        kept = self.kept
        rows = slice(None)
        if kept == self.k:  # full: only channels where a new clip beats the k-th (ties keep the earlier)
            rows = np.flatnonzero((values > self.values[:, -1:]).any(axis=1))
            if not len(rows):
                return
        candidates = np.concatenate([self.values[rows], values[rows]], axis=1)
        order = top_order(candidates, self.k)
        top_values = np.take_along_axis(candidates, order, axis=1)
        top_index = index[np.maximum(order - kept, 0)]
        if kept:
            earlier = np.take_along_axis(self.index[rows], np.minimum(order, kept - 1), axis=1)
            top_index = np.where(order < kept, earlier, top_index)
        if isinstance(rows, slice):
            self.kept = top_values.shape[1]
        self.values[rows], self.index[rows] = top_values, top_index
        self.keep_ids(index, ids)

    def keep_ids(self, index: np.ndarray, ids: Sequence[str | None] | None) -> None:
        """Ids of the clips now in some channel's top k: the ones known before, plus the new winners'."""
        winners = np.unique(self.index)
        found = {position: self.ids[position] for position in winners.tolist() if position in self.ids}
        if ids is not None:
            new = winners[winners >= index[0]]
            for position, offset in zip(new.tolist(), np.searchsorted(index, new).tolist()):
                if ids[offset] is not None:
                    found[position] = ids[offset]
        self.ids = found

    def id_table(self) -> np.ndarray:
        positions, where = np.unique(self.index, return_inverse=True)  # channels share many top clips
        names = np.array([self.ids.get(p, str(p)) for p in positions.tolist()] or [""], dtype=str)
        return names[where.reshape(-1)].reshape(self.index.shape)


def top_order(candidates: np.ndarray, k: int) -> np.ndarray:
    """Column order of each row's k largest values [R, min(k, n)]: value descending, NaN last, ties by column.

    Columns are in position order among equal values (kept entries first, then the new
    clips in stream order), so "ties by column" is "ties go to the earlier clip". A
    partition finds each row's k-th value; every column above it and the earliest ones
    equal to it make the k, and only those k are sorted.
    """
    count = min(k, candidates.shape[1])
    if candidates.shape[1] <= 4 * k or np.isnan(candidates).any():
        return np.argsort(-candidates, axis=1, kind="stable")[:, :count]
    kth = -np.partition(-candidates, count - 1, axis=1)[:, count - 1 : count]
    above, at = candidates > kth, candidates == kth
    wanted = count - above.sum(axis=1, keepdims=True)
    chosen = above | (at & (np.cumsum(at, axis=1) <= wanted))
    columns = np.nonzero(chosen)[1].reshape(len(candidates), count)  # ascending per row
    picked = np.take_along_axis(candidates, columns, axis=1)
    return np.take_along_axis(columns, np.argsort(-picked, axis=1, kind="stable"), axis=1)


class DoublingHistogram:
    """Per-channel counts over edges shared by a layer's channels, widened by doubling as values arrive.

    The first batch fixes the origin (its smallest value) and a bin width spanning its
    range. A later value beyond the top edge doubles the width keeping the bottom edge
    (bins 2j and 2j+1 merge into j); one below the bottom edge doubles it keeping the top
    edge. Edges are origin + unit × integer, so every old edge is exactly a new edge and
    re-binning moves whole bins: the counts equal a one-shot histogram over the final
    edges (`np.histogram(values, edges)`), whatever the batch sizes. For that every value
    stays strictly below the top edge: one on it would sit in the last bin (closed on the
    right) and, once the width doubles, on an inner edge whose bin is the one above.
    Non-finite values are not counted.
    """

    def __init__(self, channels: int, bins: int) -> None:
        if bins < 2 or bins % 2:
            raise ValueError(f"histogram bins must be an even number >= 2, got {bins}")
        self.bins = bins
        self.counts = np.zeros((channels, bins), np.int64)
        self.origin: float | None = None
        self.unit = 1.0
        self.first = 0
        """Bottom edge, in units from the origin."""
        self.step = 1
        """Bin width, in units (a power of two)."""

    @property
    def edges(self) -> np.ndarray:
        offsets = np.float64(self.first) + np.float64(self.step) * np.arange(self.bins + 1, dtype=np.float64)
        return np.float64(self.origin or 0.0) + np.float64(self.unit) * offsets

    def update(self, values: np.ndarray) -> None:
        """values [B, C]."""
        values = values.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        everything = bool(finite.all())
        if everything:
            low, high = float(values.min()), float(values.max())
        elif finite.any():
            values = np.where(finite, values, np.nan)
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
        else:
            return
        edges = self.fit(low, high)
        channels = self.counts.shape[0]
        flat = self._bin(values, edges) + np.arange(channels) * self.bins
        self.counts += np.bincount(flat[finite] if not everything else flat.ravel(),
                                   minlength=channels * self.bins).reshape(channels, self.bins)

    def fit(self, low: float, high: float) -> np.ndarray:
        """Edges covering low..high (finite), doubling the bin width as often as it takes."""
        if self.origin is None:
            self._start(low, high)
        edges = self.edges
        while high >= edges[-1]:  # strictly below the top edge: see the class docstring
            self._double(keep_bottom=True)
            edges = self.edges
        while low < edges[0]:
            self._double(keep_bottom=False)
            edges = self.edges
        return edges

    def _bin(self, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """The bin of each value, edges[i] <= v < edges[i + 1] (the last bin also takes its top edge), as np.histogram.

        Arithmetic gives the bin up to rounding; values that land within rounding of an
        edge are then compared with the edges themselves, which makes every bin exact.
        """
        with np.errstate(invalid="ignore"):
            position = (values - edges[0]) * (1.0 / (edges[1] - edges[0]))
            bins = np.floor(position)
            fraction = position - bins
            near = np.flatnonzero((fraction < 1e-6) | (fraction > 1 - 1e-6))
        bins = np.nan_to_num(bins, nan=0.0, copy=False).astype(np.intp).ravel()
        np.clip(bins, 0, self.bins - 1, out=bins)
        if len(near):
            value, guess = values.ravel()[near], bins[near]
            guess -= (value < edges[guess]) & (guess > 0)
            guess += (value >= edges[guess + 1]) & (guess < self.bins - 1)
            bins[near] = guess
        return bins.reshape(values.shape)

    def _start(self, low: float, high: float) -> None:
        span = high - low
        if not span > 0:
            span = max(abs(low), 1.0) * 1e-3
        unit = span / self.bins
        if not math.isfinite(unit) or unit <= 0:
            raise ValueError(f"cannot bin values spanning {low}..{high}")
        while low + unit * self.bins <= high:  # the top edge strictly above the first batch
            unit = math.nextafter(unit, math.inf)
        self.origin, self.unit = low, unit

    def _double(self, keep_bottom: bool) -> None:
        pairs = self.counts.reshape(self.counts.shape[0], self.bins // 2, 2).sum(-1)
        merged = np.zeros_like(self.counts)
        if keep_bottom:
            merged[:, : self.bins // 2] = pairs
        else:
            merged[:, self.bins // 2 :] = pairs
            self.first -= self.step * self.bins
        self.counts, self.step = merged, self.step * 2


class PerClassMax:
    """Running maximum, sum and count per label and channel; the tables grow as higher labels appear."""

    def __init__(self, channels: int, classes: int = 0) -> None:
        self.table = np.full((classes, channels), -np.inf, np.float32)
        """[classes, C]: a clip's row of values updates one row."""
        self.sums = np.zeros((classes, channels), np.float64)
        """[classes, C]: a clip's row of values added to its label's row, clip after clip (as the C pass does)."""
        self.counts = np.zeros(classes, np.int64)

    def update(self, values: np.ndarray, labels: np.ndarray) -> None:
        """values [B, C]; labels [B], -1 for a clip without a label."""
        labelled = labels >= 0
        if not labelled.any():
            return
        labels = labels[labelled]
        self.widen(int(labels.max()) + 1)
        order = np.argsort(labels, kind="stable")
        ordered = labels[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        maxima = np.maximum.reduceat(values[labelled][order].astype(np.float32, copy=False), starts, axis=0)  # [G, C]
        present = ordered[starts]
        self.table[present] = np.maximum(self.table[present], maxima)
        np.add.at(self.sums, labels, values[labelled].astype(np.float64))  # in clip order: bitwise the C pass's sums
        self.counts += np.bincount(labels, minlength=len(self.counts))

    def widen(self, classes: int) -> None:
        """Room for labels below `classes`."""
        if classes > self.table.shape[0]:
            known = self.table.shape[0]
            grown = np.full((classes, self.table.shape[1]), -np.inf, np.float32)
            grown[:known] = self.table
            sums = np.zeros((classes, self.table.shape[1]), np.float64)
            sums[:known] = self.sums
            counts = np.zeros(classes, np.int64)
            counts[:known] = self.counts
            self.table, self.sums, self.counts = grown, sums, counts

    def result(self) -> np.ndarray:
        """[C, classes] float32, NaN where no clip had the label."""
        return np.where(np.isneginf(self.table), np.float32(np.nan), self.table).T.astype(np.float32, order="C")

    def sum_result(self) -> np.ndarray:
        """[C, classes] float64."""
        return np.ascontiguousarray(self.sums.T)


class ChannelStatistics:
    """All of one layer's accumulators, fed per-clip maxima [B, C] batch by batch.

    Batches are gathered up to `chunk` clips before the accumulators see them: the
    per-update costs (a call into C, or numpy's sort per channel and histogram search)
    then fall on hundreds of clips at once instead of on every forward batch. By default
    at most PENDING_VALUES numbers (1 MiB) wait per layer. The numpy lines in `_drain` are
    the reference; `_update_natively` computes the same numbers in one C pass.
    """

    PENDING_VALUES = 1 << 18

    def __init__(self, layer: str, channels: int, *, top_k: int, bins: int, classes: int = 0, chunk: int | None = None,
                 native: bool = True) -> None:
        self.layer, self.channels = layer, channels
        self.kernels = NativeStatistics.get() if native and enabled() else None
        """The C pass (`native_statistics.py`) when it is built; else numpy does the same arithmetic."""
        self.chunk = chunk or max(1, min(1024, self.PENDING_VALUES // max(channels, 1)))
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[str | None] | None]] = []
        self.waiting = 0
        self.clips = 0
        self.max = np.full(channels, -np.inf, np.float32)
        self.sum = np.zeros(channels, np.float64)
        self.top = TopClips(channels, top_k)
        self.histogram = DoublingHistogram(channels, bins)
        self.per_class = PerClassMax(channels, classes)
        self._low_high = np.empty(2, np.float64)
        self._chunk_sum = np.empty(channels, np.float64)
        self._bar = np.empty(channels, np.float32)

    def update(self, values: np.ndarray, index: np.ndarray, labels: np.ndarray,
               ids: Sequence[str | None] | None = None) -> None:
        if values.ndim != 2 or values.shape[1] != self.channels:
            raise ValueError(f"layer {self.layer!r}: expected per-clip maxima [B, {self.channels}], got {list(values.shape)}")
        if not len(values):  # nothing to count (the reductions below have no identity for an empty batch)
            return
        self.pending.append((values, index, labels, ids))
        self.waiting += len(values)
        if self.waiting >= self.chunk:
            self._drain()

    def _drain(self) -> None:
        if not self.pending:
            return
        if len(self.pending) == 1:
            values, index, labels, ids = self.pending[0]
        else:
            values = np.concatenate([p[0] for p in self.pending])
            index = np.concatenate([p[1] for p in self.pending])
            labels = np.concatenate([p[2] for p in self.pending])
            ids = None
            if any(p[3] is not None for p in self.pending):
                ids = []
                for part in self.pending:
                    ids.extend(part[3] if part[3] is not None else [None] * len(part[0]))
        self.pending, self.waiting = [], 0
        self.clips += len(values)
        if self.kernels is not None:
            self._update_natively(values, index, labels, ids)
            return
        np.maximum(self.max, values.max(axis=0), out=self.max)
        self.sum += values.sum(axis=0, dtype=np.float64)
        self.top.update(values, index, ids)
        self.histogram.update(values)
        self.per_class.update(values, labels)

    def _update_natively(self, values: np.ndarray, index: np.ndarray, labels: np.ndarray,
                         ids: Sequence[str | None] | None) -> None:
        """The same updates as the numpy lines in `_drain`, in one pass over the values."""
        values = np.ascontiguousarray(values, np.float32)
        index, labels = np.ascontiguousarray(index, np.int64), np.ascontiguousarray(labels, np.int64)
        count = len(values)
        if index.shape != (count,) or labels.shape != (count,):
            raise ValueError(f"layer {self.layer!r}: {count} clips but {index.shape} positions and {labels.shape} labels")
        finite_range, update = self.kernels
        if finite_range(values.ctypes.data, values.size, self._low_high.ctypes.data):
            edges = self.histogram.fit(float(self._low_high[0]), float(self._low_high[1]))
        else:  # nothing to bin: any edges do
            edges = self.histogram.edges
        self.per_class.widen(int(labels.max()) + 1)
        edges, counts, table = float32_edges(edges), self.histogram.counts, self.per_class.table
        sums, class_counts = self.per_class.sums, self.per_class.counts
        top_values, top_index = self.top.buffers
        # the kernel writes through these addresses: each must be a contiguous array of the shape it assumes
        if not (counts.flags.c_contiguous and counts.shape == (self.channels, self.histogram.bins)
                and table.flags.c_contiguous and table.shape[1] == self.channels and table.dtype == np.float32
                and sums.flags.c_contiguous and sums.shape == table.shape and sums.dtype == np.float64
                and class_counts.flags.c_contiguous and class_counts.shape == (table.shape[0],)
                and class_counts.dtype == np.int64):
            raise RuntimeError(f"layer {self.layer!r}: an accumulator lost its layout")
        self.top.kept = update(
            values.ctypes.data, count, self.channels, index.ctypes.data, labels.ctypes.data,
            self.max.ctypes.data, self.sum.ctypes.data, self._chunk_sum.ctypes.data,
            edges.ctypes.data, self.histogram.bins, counts.ctypes.data,
            top_values.ctypes.data, top_index.ctypes.data, self.top.k, self.top.kept, self._bar.ctypes.data,
            table.ctypes.data, table.shape[0], sums.ctypes.data, class_counts.ctypes.data,
        )
        self.top.keep_ids(index, ids)

    def finish(self) -> LayerStatistics:
        self._drain()
        if self.clips == 0:
            raise ValueError("no clips were recorded")
        return LayerStatistics(
            layer=self.layer, clips=self.clips, max=self.max.copy(), mean=(self.sum / self.clips).astype(np.float32),
            top_values=self.top.values.copy(), top_index=self.top.index.copy(), top_ids=self.top.id_table(),
            histogram=self.histogram.counts.copy(), histogram_edges=self.histogram.edges,
            per_class_max=self.per_class.result(), per_class_sum=self.per_class.sum_result(),
            per_class_count=self.per_class.counts.copy(),
        )

    def __repr__(self) -> str:
        return f"ChannelStatistics({self.layer!r}, channels={self.channels}, clips={self.clips})"


def float32_edges(edges: np.ndarray) -> np.ndarray:
    """For each float64 edge the smallest float32 at or above it: for a float32 v, v >= edge exactly
    when v >= that float32, so the C pass bins in float32 and still matches np.histogram."""
    rounded = edges.astype(np.float32)
    below = rounded.astype(np.float64) < edges
    return np.ascontiguousarray(np.where(below, np.nextafter(rounded, np.float32(np.inf)), rounded), dtype=np.float32)
