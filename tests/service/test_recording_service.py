"""RecordingService against a real server on port 0: record through a chunked stream, get, list, survive a
restart, refuse bad requests with the right codes, and normalize Maximize by a recording."""

from __future__ import annotations

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from kinetoscope import tensors
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.server.engine.statistics import LayerStatistics
from kinetoscope.server.recordings import RecordingStore
from kinetoscope.server.service import ServiceLimits
from kinetoscope.server.service.plan import reference_maxima
from kinetoscope.server.store import StoredModel
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import TRAINED, channel_objectives, code_of, collect, declarations, import_other, import_trained, start, upload

CLIPS = 24
CHUNK = 5000
"""Small chunks: every clip's tensors arrive in several pieces."""


@pytest.fixture(scope="module")
def clips():
    rgb, flow, labels = SyntheticActions().batch(CLIPS, seed=11)
    return {"rgb": rgb, "flow": flow}, labels


def requests(model: str, layers, inputs, labels=None, *, ids=None, top_k: int = 3, count: int | None = None,
             name: str = "", skip_input: str | None = None):
    yield pb.RecordRequest(header=pb.RecordHeader(model=model, layers=list(layers), top_k=top_k, name=name))
    for i in range(count if count is not None else len(next(iter(inputs.values())))):
        start = pb.ClipStart(id=ids[i] if ids else "")
        if labels is not None:
            start.has_label, start.label = True, int(labels[i])
        yield pb.RecordRequest(clip=start)
        for input_name, array in inputs.items():
            if input_name != skip_input:
                for chunk in tensors.to_chunks(input_name, array[i], CHUNK):
                    yield pb.RecordRequest(data=chunk)


def brute_max(inputs, layer: str) -> np.ndarray:
    """Per-clip maximum over positions [N, C] of `layer`, from onnxruntime on the original file."""
    graph = onnx.load(TRAINED)
    graph.graph.output.append(onnx.helper.make_empty_tensor_value_info(layer))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    value = session.run([layer], inputs)[0]
    return value.reshape(value.shape[0], value.shape[1], -1).max(-1)


def test_record_get_and_list(shared, clips) -> None:
    inputs, labels = clips
    ids = [f"v{i}" for i in range(CLIPS)]
    info = shared.rec.Record(requests("small", ["/conv_fusion/relu/Relu", "logits"], inputs, labels, ids=ids, name="val"),
                             timeout=60)
    assert info.clips == CLIPS and list(info.layers) == ["conv_fusion", "logits"]  # node alias → tensor name
    assert info.model == shared.model.id and info.name == "val" and len(info.id) == 16
    recording = shared.rec.GetRecording(pb.GetRecordingRequest(recording=info.id), timeout=30)
    fusion = recording.layers[0]
    expected = brute_max(inputs, "conv_fusion")
    np.testing.assert_allclose(fusion.max, expected.max(0), rtol=1e-5, atol=1e-5 * expected.max())
    np.testing.assert_allclose(fusion.mean, expected.mean(0), rtol=1e-5, atol=1e-5 * expected.max())
    best = int(np.argmax(expected[:, 0]))
    assert fusion.top[0].clips[0].clip_index == best and fusion.top[0].clips[0].clip_id == ids[best]
    assert all(len(top.clips) == 3 for top in fusion.top)
    histogram = tensors.from_tensor(fusion.histogram)
    assert histogram.shape == (64, 64) and (histogram.sum(1) == CLIPS).all()
    assert len(fusion.histogram_edges) == 65
    per_class = tensors.from_tensor(fusion.per_class_max)
    assert per_class.shape == (64, 10)
    for label in range(10):
        np.testing.assert_allclose(per_class[:, label], expected[labels == label].max(0), rtol=1e-5, atol=1e-5 * expected.max())
    listed = shared.rec.ListRecordings(pb.ListRecordingsRequest(model="small"), timeout=10).recordings
    assert info.id in [r.id for r in listed]
    assert info.id in [r.id for r in shared.rec.ListRecordings(pb.ListRecordingsRequest(), timeout=10).recordings]
    assert shared.rec.GetRecording(pb.GetRecordingRequest(recording="val"), timeout=10).info.id == info.id  # by name



def test_the_python_client_lists_recordings_of_one_model_or_all(tmp_path, clips) -> None:
    from kinetoscope.client.client import Client  # noqa: PLC0415

    inputs, labels = clips
    running = start(tmp_path / "store")
    try:
        small, other = import_trained(running, name="small"), import_other(running)
        with Client(f"127.0.0.1:{running.port}") as client:
            assert client.list_recordings() == []
            first = client.record("small", {k: v[:8] for k, v in inputs.items()}, labels[:8], layers=["conv_fusion"],
                                  name="first")
            second = client.record("other", {k: v[:5] for k, v in inputs.items()}, layers=["logits"], name="second")
            assert [(r.id, r.name, r.model, r.clips, r.layers) for r in client.list_recordings("small")] == [
                (first.id, "first", small.id, 8, ["conv_fusion"])]
            assert [(r.id, r.model, r.clips) for r in client.list_recordings(other.id)] == [(second.id, other.id, 5)]
            assert sorted(r.id for r in client.list_recordings()) == sorted([first.id, second.id])
            with pytest.raises(grpc.RpcError) as unknown:
                client.list_recordings("nope")
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        running.stop()

def test_recordings_survive_a_restart(tmp_path, clips) -> None:
    inputs, labels = clips
    first = start(tmp_path / "store")
    try:
        import_trained(first)
        info = first.rec.Record(requests("small", ["conv_fusion"], inputs, labels, count=6), timeout=60)
        before = first.rec.GetRecording(pb.GetRecordingRequest(recording=info.id), timeout=10)
    finally:
        first.stop()
    again = start(tmp_path / "store")
    try:
        after = again.rec.GetRecording(pb.GetRecordingRequest(recording=info.id), timeout=10)
        assert after == before
        assert [r.id for r in again.rec.ListRecordings(pb.ListRecordingsRequest(model="small"), timeout=10).recordings] == [info.id]
    finally:
        again.stop()


@pytest.mark.parametrize("case, code, words", [
    ("bad layer", grpc.StatusCode.INVALID_ARGUMENT, "has no layer 'nope'"),
    ("unknown model", grpc.StatusCode.NOT_FOUND, "no model 'ghost'"),
    ("label too high", grpc.StatusCode.INVALID_ARGUMENT, "label 10 is out of range; the model has 10 classes"),
    ("negative label", grpc.StatusCode.INVALID_ARGUMENT, "label -1 is negative"),
    ("missing input", grpc.StatusCode.INVALID_ARGUMENT, "lacks input(s) 'flow'"),
    ("no clips", grpc.StatusCode.INVALID_ARGUMENT, "no clips arrived"),
    ("odd bins", grpc.StatusCode.INVALID_ARGUMENT, "even number"),
])
def test_bad_record_calls_get_clear_statuses(shared, clips, case, code, words) -> None:
    inputs, labels = clips
    model, layers, count, skip = "small", ["conv_fusion"], 3, None
    labels = labels.copy()
    if case == "bad layer":
        layers = ["conv_fusion", "nope"]
    elif case == "unknown model":
        model = "ghost"
    elif case == "label too high":
        labels[2] = 10
    elif case == "negative label":
        labels[1] = -1
    elif case == "missing input":
        skip = "flow"
    elif case == "no clips":
        count = 0
    stream = requests(model, layers, inputs, labels, count=count, skip_input=skip)
    if case == "odd bins":
        header = next(stream)
        header.header.histogram_bins = 7
        stream = iter([header, *stream])
    got, details = code_of(shared.rec.Record, stream, timeout=60)
    assert got == code and words in details, details
    assert shared.serving()


def test_limits_on_clips_clip_bytes_and_recording_size(tmp_path, clips) -> None:
    inputs, labels = clips
    running = start(tmp_path / "store", limits=ServiceLimits(max_record_clips=4, max_clip_bytes=60_000,
                                                                max_recording_bytes=20_000))
    try:
        import_trained(running)
        small = {"rgb": inputs["rgb"], "flow": inputs["flow"][:, :4]}  # fits the byte limit, but the model takes 20 flow planes
        got, details = code_of(running.rec.Record, requests("small", ["logits"], small, count=1), timeout=60)
        assert got == grpc.StatusCode.INVALID_ARGUMENT and "the model takes [20, 32, 32] per clip" in details
        got, details = code_of(running.rec.Record, requests("small", ["logits"], inputs, count=1), timeout=60)
        assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "60,000 bytes" in details
        light = {"rgb": inputs["rgb"], "flow": inputs["flow"].astype(np.float16)}  # 12 + 40 KB per clip
        info = running.rec.Record(requests("small", ["logits"], light, count=4), timeout=60)
        assert info.clips == 4
        got, details = code_of(running.rec.Record, requests("small", ["logits"], light, count=5), timeout=60)
        assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "more than 4 clips" in details
        got, details = code_of(running.rec.Record, requests("small", ["conv_fusion"], light, count=1), timeout=60)
        assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 20,000 per recording" in details
        assert running.serving()
    finally:
        running.stop()


def test_maximize_normalized_by_a_recording(shared, clips) -> None:
    inputs, labels = clips
    info = shared.rec.Record(requests("small", ["conv_fusion"], inputs, labels), timeout=60)
    recorded = shared.rec.GetRecording(pb.GetRecordingRequest(recording=info.id), timeout=10).layers[0]
    channels = [int(c) for c in np.argsort(-np.array(recorded.max))[:2]]
    request = pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", channels),
                                 options=pb.MaximizeOptions(iterations=3, seed=0), recording=info.id)
    out = collect(shared.vis.Maximize(request, timeout=120))
    layer = next(l for l in shared.models.GetModel(pb.GetModelRequest(model="small"), timeout=10).layers if l.name == "conv_fusion")
    rho2 = max(rf.axes["H"] * rf.axes["W"] for rf in layer.receptive_field.values())
    for u, channel in enumerate(channels):
        result = out.results[(u, 0)]
        assert result.has_reference and result.reference_max == pytest.approx(recorded.max[channel], rel=1e-7)
        assert result.normalizer == pytest.approx(rho2 * recorded.max[channel], rel=1e-6)  # eq. 1: ρ_l² â_{l,c}
    assert not any("no recording" in w for w in out.summary.warnings)

    request.recording = "0123456789abcdef"
    got, details = code_of(shared.vis.Maximize, request, timeout=30)
    assert got == grpc.StatusCode.NOT_FOUND and "no recording '0123456789abcdef'" in details
    request.recording = info.id
    request.objectives[0].terms[0].layer = "rgb/conv3"
    request.objectives[0].terms[0].channel = 0  # a channel rgb/conv3 has (it is narrower than conv_fusion)
    got, details = code_of(shared.vis.Maximize, request, timeout=30)
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "has no layer 'rgb/conv3'" in details

    other = onnx.load(TRAINED)
    onnx.helper.set_model_props(other, {**{p.key: p.value for p in other.metadata_props}, "copy": "1"})
    twin = shared.models.ImportModel(upload(other.SerializeToString(), name="small-twin", inputs=declarations()), timeout=120)
    assert twin.id != shared.model.id
    request.model = twin.id
    request.objectives[0].terms[0].layer = "conv_fusion"
    got, details = code_of(shared.vis.Maximize, request, timeout=30)
    assert got == grpc.StatusCode.FAILED_PRECONDITION and f"was made on model small ({shared.model.id})" in details
    assert shared.serving()


def test_channels_that_never_fired_are_not_divided_by(tmp_path) -> None:
    store = RecordingStore(tmp_path)
    channels, k = 3, 2
    stats = LayerStatistics(
        layer="conv", clips=4, max=np.array([2.0, 0.0, -1.0], np.float32), mean=np.zeros(channels, np.float32),
        top_values=np.zeros((channels, k), np.float32), top_index=np.zeros((channels, k), np.int64),
        top_ids=np.full((channels, k), "a"), histogram=np.zeros((channels, 4), np.int64),
        histogram_edges=np.linspace(-1, 2, 5), per_class_max=np.full((channels, 0), np.nan, np.float32),
    )
    recording = store.put({"model": "m1", "model_name": "m"}, {"conv": stats})
    again = RecordingStore(tmp_path).get(recording.id).statistics()["conv"]
    for name in LayerStatistics.ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(stats, name))
    reference, warnings = reference_maxima(recording.id, store, StoredModel("m1", tmp_path, {"name": "m"}),
                                           [("conv", 0), ("conv", 1), ("conv", 2)])
    assert reference == {("conv", 0): 2.0}
    assert len(warnings) == 1 and "2 channel(s) never rose above 0" in warnings[0] and "conv:1, conv:2" in warnings[0]
