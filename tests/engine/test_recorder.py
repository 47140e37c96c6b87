"""Recording on the zoo's trained two-stream model: statistics equal a brute-force onnxruntime pass over the
same clips, memory stays flat however many clips stream through, and a maximization normalized by a
recording reports its activation relative to the recorded â."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import kinetoscope.model_zoo as zoo
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.server.engine import Channel, MaximizeConfig, maximize
from kinetoscope.server.engine.config import RecordConfig
from kinetoscope.server.engine.recorder import Recorder
from kinetoscope.server.engine.statistics import DoublingHistogram, TopClips
from kinetoscope.server.importer import import_model
from kinetoscope.server.importer.ort import make_session

MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
LAYERS = ["rgb/conv1/bn", "conv_fusion", "logits"]
"""A conv before its ReLU, a fusion ReLU and the logits (no positions; negative values)."""
CLIPS = 70
RTOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return import_model(MODEL, inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])


@pytest.fixture(scope="module")
def clips():
    rgb, flow, labels = SyntheticActions().batch(CLIPS, seed=5)
    labels = np.where(labels == 9, -1, labels)  # class 9 unlabelled: its per-class column stays empty
    return {"rgb": rgb, "flow": flow}, labels, [f"clip-{i:03d}" for i in range(CLIPS)]


@pytest.fixture(scope="module")
def brute(model, clips):
    """Per layer, the per-clip maximum over positions [N, C], from an onnxruntime session run clip by clip."""
    inputs, _, _ = clips
    session = make_session(model.graph, LAYERS)
    per_clip = [session.run(LAYERS, {name: array[i : i + 1] for name, array in inputs.items()}) for i in range(CLIPS)]
    return {layer: np.stack([values[j][0].reshape(values[j].shape[1], -1).max(-1) for values in per_clip])
            for j, layer in enumerate(LAYERS)}


def record(model, clips, backend: str = "onnxruntime", **config) -> dict:
    inputs, labels, ids = clips
    recorder = Recorder(model, LAYERS, RecordConfig(backend=backend, **{
        "batch_size": 16, "top_k": 5, "histogram_bins": 16, "classes": 10, "pending_clips": 10, **config}))
    recorder.add({name: array[:7] for name, array in inputs.items()}, labels[:7], ids[:7])  # a part-filled batch first
    for i in range(7, 12):
        recorder.add_clip({name: array[i] for name, array in inputs.items()}, int(labels[i]), ids[i])
    recorder.add({name: array[12:] for name, array in inputs.items()}, labels[12:], ids[12:])
    return recorder.finish()


def test_statistics_equal_brute_force_onnxruntime(model, clips, brute) -> None:
    _, labels, ids = clips
    stats = record(model, clips)
    for layer in LAYERS:
        expected, got = brute[layer], stats[layer]
        assert got.clips == CLIPS
        np.testing.assert_allclose(got.max, expected.max(0), rtol=RTOL, atol=RTOL * np.abs(expected).max())
        np.testing.assert_allclose(got.mean, expected.mean(0), rtol=RTOL, atol=RTOL * np.abs(expected).max())
        order = np.lexsort((np.arange(CLIPS)[:, None].repeat(expected.shape[1], 1), -expected), axis=0)[:5].T
        np.testing.assert_array_equal(got.top_index, order)
        assert got.top_ids.tolist() == [[ids[i] for i in row] for row in order]
        np.testing.assert_allclose(got.top_values, np.take_along_axis(expected.T, order, 1), rtol=RTOL,
                                   atol=RTOL * np.abs(expected).max())
        per_class = np.full((expected.shape[1], 10), np.nan, np.float32)
        for label in range(10):
            if (labels == label).any():
                per_class[:, label] = expected[labels == label].max(0)
        assert np.isnan(got.per_class_max[:, 9]).all()
        np.testing.assert_allclose(got.per_class_max, per_class, rtol=RTOL, atol=RTOL * np.abs(expected).max())
        assert got.per_class_count.tolist() == np.bincount(labels[labels >= 0], minlength=10).tolist()
        class_mean = np.stack([expected[labels == k].mean(0) if (labels == k).any() else np.full(expected.shape[1], np.nan)
                               for k in range(10)], axis=1)
        np.testing.assert_allclose(got.per_class_mean, class_mean, rtol=RTOL, atol=RTOL * np.abs(expected).max())
        assert (got.histogram.sum(1) == CLIPS).all()
        edges, tolerance = got.histogram_edges, RTOL * np.abs(expected).max()
        assert edges[0] <= expected.min() + tolerance and expected.max() <= edges[-1] + tolerance
        one_shot = np.stack([np.histogram(expected[:, c], edges)[0] for c in range(expected.shape[1])])
        near_edge = np.isclose(expected[..., None], edges, rtol=RTOL, atol=0).any(-1).sum()
        assert np.abs(got.histogram - one_shot).sum() <= 2 * near_edge
    assert (brute["logits"] < 0).any(), "negative per-clip maxima are binned too"


def test_torch_backend_agrees_with_onnxruntime(model, clips) -> None:
    ort_stats, torch_stats = record(model, clips, "onnxruntime"), record(model, clips, "torch")
    for layer in LAYERS:
        scale = np.abs(ort_stats[layer].max).max()
        np.testing.assert_allclose(torch_stats[layer].max, ort_stats[layer].max, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(torch_stats[layer].mean, ort_stats[layer].mean, rtol=1e-4, atol=1e-4 * scale)


def test_histogram_rebinning_is_exact_and_top_ties_go_to_the_earlier_clip() -> None:
    rng = np.random.default_rng(0)
    histogram = DoublingHistogram(channels=3, bins=8)
    seen = []
    for scale in (0.01, 1.0, 40.0, 3.0, 900.0):  # the range grows up and down several times
        batch = rng.normal(scale / 4, scale, (5, 3))
        histogram.update(batch)
        seen.append(batch)
    seen = np.concatenate(seen)
    edges = histogram.edges
    assert edges[0] <= seen.min() and seen.max() <= edges[-1]
    for c in range(3):
        np.testing.assert_array_equal(histogram.counts[c], np.histogram(seen[:, c], edges)[0])

    top = TopClips(channels=1, k=3)
    top.update(np.array([[1.0], [2.0], [2.0]]), np.array([0, 1, 2]), ["a", "b", "c"])
    top.update(np.array([[2.0], [5.0]]), np.array([3, 4]), ["d", "e"])
    assert top.index.tolist() == [[4, 1, 2]] and top.id_table().tolist() == [["e", "b", "c"]]
    assert set(top.ids) == {1, 2, 4}, "ids of clips that left every top k are dropped"


def _peak_while_streaming(model, batches: int, batch: int = 8) -> int:
    recorder = Recorder(model, LAYERS, RecordConfig(batch_size=batch, top_k=5, histogram_bins=16, classes=10))
    synthetic = SyntheticActions()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    for b in range(batches):
        rgb, flow, labels = synthetic.batch(batch, seed=b)
        recorder.add({"rgb": rgb, "flow": flow}, labels, [f"clip-{b}-{i}" for i in range(batch)])
        del rgb, flow, labels
    recorder.finish()
    return tracemalloc.get_traced_memory()[1] - base


def test_memory_stays_flat_with_ten_times_more_clips(model) -> None:
    tracemalloc.start()
    try:
        _peak_while_streaming(model, 2)  # first-use allocations (sessions, caches) out of the way
        small = _peak_while_streaming(model, 5)
        large = _peak_while_streaming(model, 50)
    finally:
        tracemalloc.stop()
    per_clip = sum(math.prod(model.layer(name).shape) for name in LAYERS) * 4
    held = per_clip * 50 * 8
    assert held > 10 * small, "the test must stream more activation data than a leaky recorder could hide"
    assert large <= 1.10 * small, f"peak traced memory grew from {small:,} to {large:,} bytes with 10x the clips"


def test_maximization_normalized_by_a_recording_reports_activation_relative_to_the_max(model, clips) -> None:
    stats = record(model, clips)["conv_fusion"]
    channels = [int(c) for c in np.argsort(-stats.max)[:2]]
    reference = {("conv_fusion", c): float(stats.max[c]) for c in range(stats.channels)}
    result = maximize(model, [Channel("conv_fusion", c) for c in channels], config=MaximizeConfig(iterations=4, seed=0),
                      reference_max=reference)
    assert not result.warnings
    layer = model.layer("conv_fusion")
    rho2 = max(rf["H"] * rf["W"] for rf in layer.receptive_field.values())
    for row, channel in zip(result.results, channels):
        unit = row[0]
        assert unit.reference_max == pytest.approx(float(stats.max[channel]), rel=0, abs=0)
        assert unit.normalizer == pytest.approx(rho2 * float(stats.max[channel]))


@pytest.mark.parametrize("opset", [17, 18])
def test_graph_maxima_reduce_the_named_axes_at_any_batch(opset: int) -> None:
    """GlobalMaxPool, ReduceMax (axes as attribute before opset 18, as input from 18) and no reduction, batched."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from kinetoscope.server.importer.ort import MaxReduction, with_maxima

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 1, 3])],
        "maxima", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4, 3, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    reductions = [MaxReduction("a", (2, 3), 4), MaxReduction("t", (1, 3), 4), MaxReduction("x", (), 4)]
    edited, outputs = with_maxima(model, reductions, dynamic_batch=True)
    assert len(model.graph.output) == 1 and len(model.graph.node) == 2, "the model itself is left as it was"
    x = np.random.default_rng(0).normal(0, 1, (3, 3, 4, 5)).astype(np.float32)
    session = ort.InferenceSession(edited.SerializeToString(), providers=["CPUExecutionProvider"])
    pooled, reduced, same = session.run(outputs, {"x": x})
    relu = np.maximum(x, 0)
    np.testing.assert_array_equal(pooled.reshape(3, 3), relu.max(axis=(2, 3)))
    np.testing.assert_array_equal(reduced, relu.transpose(0, 2, 1, 3).max(axis=(1, 3)))
    np.testing.assert_array_equal(same, x)
