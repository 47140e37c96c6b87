"""The C pass of the recording accumulators against their numpy version, on the values that make
each statistic hard: ties, exact zeros, NaN and infinities, a range that keeps growing, bins narrower
than float32's spacing, more channels than the pass's block, fewer clips than k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from kinetoscope.server.engine import native_build
from kinetoscope.server.engine.native_statistics import NativeStatistics
from kinetoscope.server.engine.statistics import ChannelStatistics, LayerStatistics, float32_edges

pytestmark = pytest.mark.skipif(not NativeStatistics.available(), reason="no C compiler to build the native pass")


@dataclass
class Stream:
    """Chunks of per-clip maxima [n_i, C] with labels and ids, fed in that order."""

    chunks: list[np.ndarray]
    labels: np.ndarray
    top_k: int = 5
    bins: int = 16

    @property
    def channels(self) -> int:
        return self.chunks[0].shape[1]

    def record(self, native: bool) -> LayerStatistics:
        stats = ChannelStatistics("layer", self.channels, top_k=self.top_k, bins=self.bins, chunk=1, native=native)
        assert (stats.kernels is not None) == native
        start = 0
        for chunk in self.chunks:
            end = start + len(chunk)
            ids = [None if i % 3 == 0 else f"clip-{i}" for i in range(start, end)]
            stats.update(chunk.astype(np.float32), np.arange(start, end), self.labels[start:end], ids)
            start = end
        return stats.finish()


def stream(rng: np.random.Generator, sizes: list[int], channels: int, make, classes: int = 12, **options) -> Stream:
    chunks = [np.asarray(make(rng, (size, channels)), np.float32) for size in sizes]
    labels = rng.integers(-1, classes, sum(sizes))
    return Stream(chunks, labels, **options)


def _with_non_finite(rng, shape):
    values = rng.normal(0, 3, shape)
    values[rng.random(shape) < 0.1] = np.nan
    values[rng.random(shape) < 0.05] = np.inf
    values[rng.random(shape) < 0.05] = -np.inf
    return values


def _growing(rng, shape, scales=iter([0.01, 1.0, 40.0, 3.0, 900.0, 0.5] * 10)):
    return rng.normal(1.0, next(scales), shape)


STREAMS = {
    "normal": lambda rng: stream(rng, [3, 50, 1, 200, 17], 7, lambda r, s: r.normal(0.5, 2.0, s)),
    "ties": lambda rng: stream(rng, [40, 40, 40], 5, lambda r, s: r.integers(0, 4, s), top_k=7, bins=4),
    "relu zeros": lambda rng: stream(rng, [64, 64], 9, lambda r, s: np.maximum(r.normal(0, 1, s), 0)),
    "non-finite": lambda rng: stream(rng, [30, 30, 30], 6, _with_non_finite),
    "an all-NaN chunk": lambda rng: stream(rng, [10, 4, 10], 3, lambda r, s: np.full(s, np.nan) if s[0] == 4
                                           else r.normal(0, 1, s)),
    "a growing range": lambda rng: stream(rng, [6] * 6, 4, _growing),
    "bins narrower than float32 steps": lambda rng: stream(rng, [20, 20], 4,
                                                           lambda r, s: 1000 + r.integers(0, 3, s) * 6.1e-5),
    "constant": lambda rng: stream(rng, [5, 5], 3, lambda r, s: np.full(s, 2.5)),
    "fewer clips than k": lambda rng: stream(rng, [2, 1], 4, lambda r, s: r.normal(0, 1, s), top_k=10),
    "more channels than a block": lambda rng: stream(rng, [33, 31], 300, lambda r, s: r.gamma(2.0, 1.0, s),
                                                     bins=64),
    "one channel, two bins": lambda rng: stream(rng, [25, 25], 1, lambda r, s: r.normal(0, 1, s), top_k=3, bins=2),
    "no labels": lambda rng: stream(rng, [12], 3, lambda r, s: r.normal(0, 1, s), classes=0),
}


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.filterwarnings("ignore:invalid value encountered")  # numpy's sum of +inf and -inf
def test_the_native_pass_gives_the_numpy_statistics(name: str) -> None:
    case = STREAMS[name](np.random.default_rng(7))
    native, reference = case.record(native=True), case.record(native=False)
    assert native.clips == reference.clips
    for field in LayerStatistics.ARRAYS:
        got, expected = getattr(native, field), getattr(reference, field)
        assert got.shape == expected.shape and got.dtype == expected.dtype, field
        if field == "mean":  # the same float64 sums, added chunk by chunk
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=field)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=field)
    values = np.concatenate(case.chunks)
    for channel in range(case.channels):
        column = values[:, channel].astype(np.float64)
        one_shot = np.histogram(column[np.isfinite(column)], native.histogram_edges)[0]
        np.testing.assert_array_equal(native.histogram[channel], one_shot)


def test_ties_keep_the_earlier_clip_and_nan_ranks_last() -> None:
    chunks = [np.array([[np.nan], [2.0], [1.0]]), np.array([[2.0], [np.nan], [5.0], [2.0]])]
    stats = Stream([c.astype(np.float32) for c in chunks], np.full(7, -1), top_k=4).record(native=True)
    assert stats.top_index.tolist() == [[5, 1, 3, 6]] and stats.top_values.tolist() == [[5.0, 2.0, 2.0, 2.0]]
    assert np.isnan(stats.max).all() and np.isnan(stats.mean).all(), "NaN spreads into max and mean, as in numpy"
    assert stats.histogram.sum() == 5, "non-finite values are not counted"


def test_float32_edges_compare_exactly_like_the_float64_edges() -> None:
    rng = np.random.default_rng(3)
    edges = np.sort(rng.normal(0, 10, 200)) * 10.0 ** rng.integers(-8, 8, 200)
    edges = np.sort(edges)
    thresholds = float32_edges(edges)
    near = edges.astype(np.float32)
    values = np.concatenate([near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))])
    for edge, threshold in zip(edges, thresholds):
        assert ((values.astype(np.float64) >= edge) == (values >= threshold)).all()


def test_native_off_by_environment_takes_numpy(monkeypatch) -> None:
    monkeypatch.setenv(native_build.DISABLE, "0")
    assert ChannelStatistics("layer", 2, top_k=2, bins=4).kernels is None


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_an_empty_batch_counts_nothing(native: bool) -> None:
    stats = ChannelStatistics("layer", 3, top_k=2, bins=4, native=native)
    stats.update(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    stats.update(np.ones((2, 3), np.float32), np.arange(2), np.array([1, -1]))
    result = stats.finish()
    assert result.clips == 2 and result.histogram.sum() == 6 and result.per_class_max.shape == (3, 2)


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_per_class_sums_and_counts_give_the_class_means(native: bool) -> None:
    rng = np.random.default_rng(5)
    case = stream(rng, [7, 40, 13], 6, lambda r, s: r.normal(1.0, 2.0, s), classes=4)
    stats = case.record(native=native)
    values, labels = np.concatenate(case.chunks).astype(np.float64), case.labels
    assert stats.per_class_sum.shape == (6, 4) and stats.per_class_sum.dtype == np.float64
    assert stats.per_class_count.tolist() == [int(np.sum(labels == k)) for k in range(4)]
    for k in range(4):
        np.testing.assert_allclose(stats.per_class_sum[:, k], values[labels == k].sum(0), rtol=1e-12)
        np.testing.assert_allclose(stats.per_class_mean[:, k], values[labels == k].mean(0), rtol=1e-12)
    assert stats.per_class_count.sum() == np.sum(labels >= 0) < stats.clips, "unlabelled clips count in no class"


def test_statistics_stored_before_per_class_sums_load_without_them() -> None:
    stats = Stream([np.ones((3, 2), np.float32)], np.array([0, 1, 1])).record(native=False)
    old = {name: value for name, value in stats.to_arrays().items() if name not in LayerStatistics.OPTIONAL}
    loaded = LayerStatistics.from_arrays("layer", 3, old)
    assert loaded.per_class_sum.shape == (2, 0) and loaded.per_class_count.shape == (0,)
    assert loaded.per_class_mean.shape == (2, 0)
    np.testing.assert_array_equal(loaded.per_class_max, stats.per_class_max)
