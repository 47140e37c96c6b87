"""AnalysisService against a real server on port 0: the trained two-stream model, a recording of 100 synthetic
clips (ten of each class), and the per-unit measures of docs/ANALYSIS.md over the wire."""

from __future__ import annotations

import json
import shutil

import grpc
import numpy as np
import pytest

from kinetoscope import tensors
from kinetoscope.client.client import Client
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.server.recordings import CLIPS_FILE
from kinetoscope.server.service import ServiceLimits
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import code_of, import_trained, start
from .test_recording_service import requests

LAYERS = ["logits", "flow/conv3", "conv_fusion"]


@pytest.fixture(scope="module")
def recorded(shared):
    rgb, flow, labels = SyntheticActions().batch(100, seed=11)
    info = shared.rec.Record(requests("small", LAYERS, {"rgb": rgb, "flow": flow}, labels, name="analysis"), timeout=120)
    return info, labels


@pytest.fixture(scope="module")
def analysis(shared, recorded) -> pb.AnalyzeResponse:
    info, _ = recorded
    return shared.analysis.Analyze(pb.AnalyzeRequest(model="small", recording=info.id), timeout=120)


def layer(reply: pb.AnalyzeResponse, name: str) -> pb.LayerAnalysis:
    return next(item for item in reply.layers if item.layer == name)


def test_every_logit_prefers_its_own_class_and_is_class_specific(analysis, recorded) -> None:
    info, _ = recorded
    assert info.clips_kept and analysis.clips == 100 and analysis.recording == info.id
    assert [item.layer for item in analysis.layers] == LAYERS  # the recording's layers, in its order
    assert len(analysis.class_names) == 10 and analysis.permutations == 1000 and analysis.alpha == pytest.approx(0.01)
    logits = layer(analysis, "logits")
    assert len(logits.units) == 10
    for unit in logits.units:
        assert unit.top_classes[0] == unit.channel and len(unit.top_classes) == 3
        assert unit.label == "class-specific" and unit.p_value == pytest.approx(1 / 1001)
        assert 0.3 < unit.selectivity <= 1.0 and 0.0 <= unit.sparseness <= 1.0
        assert int(np.argmax(unit.class_mean)) == unit.channel


def test_class_means_equal_the_recordings_per_class_sums(shared, analysis, recorded) -> None:
    info, labels = recorded
    stats = shared.rec.GetRecording(pb.GetRecordingRequest(recording=info.id), timeout=30)
    recorded_logits = next(item for item in stats.layers if item.layer == "logits")
    sums = tensors.from_tensor(recorded_logits.per_class_sum)
    assert sums.shape == (10, 10) and sums.dtype == np.float64
    assert list(recorded_logits.per_class_count) == np.bincount(labels, minlength=10).tolist()
    means = sums / np.asarray(recorded_logits.per_class_count)[None, :]
    analysed = np.array([unit.class_mean for unit in layer(analysis, "logits").units])  # [C, classes]
    np.testing.assert_allclose(analysed, means, rtol=1e-5, atol=1e-5)
    maxima = np.array([unit.class_max for unit in layer(analysis, "logits").units])
    np.testing.assert_allclose(maxima, tensors.from_tensor(recorded_logits.per_class_max), rtol=1e-5, atol=1e-5)


def test_a_motion_only_unit_has_no_appearance_reliance(analysis) -> None:
    motion = layer(analysis, "flow/conv3")
    assert list(motion.inputs) == ["flow"]
    responsive = [unit for unit in motion.units if unit.stream_label != "unresponsive"]
    assert responsive
    for unit in responsive:
        assert unit.reliance["rgb"] == 0.0 and unit.shares["appearance"] == 0.0
        assert unit.reliance["flow"] == pytest.approx(1.0) and unit.stream_label == "motion"
    fusion = layer(analysis, "conv_fusion")
    assert set(fusion.inputs) == {"rgb", "flow"}
    assert any(unit.reliance["rgb"] > 0 and unit.reliance["flow"] > 0 for unit in fusion.units)


def test_speed_tuning_over_the_default_speeds(analysis) -> None:
    assert list(analysis.speeds) == [0.25, 0.5, 1.0, 2.0, 4.0]
    for unit in layer(analysis, "logits").units:
        assert len(unit.speed_curve) == 5 and unit.preferred_speed in analysis.speeds
        assert 0.0 <= unit.speed_invariance <= 1.0
        assert unit.speed_curve[2] == pytest.approx(np.mean(unit.class_mean), rel=1e-4, abs=1e-4)  # speed 1: the clips


def test_options_choose_layers_test_and_speeds(shared, recorded) -> None:
    info, _ = recorded
    reply = shared.analysis.Analyze(pb.AnalyzeRequest(
        model="small", recording=info.id, layers=["logits", "rgb/conv3"],
        options=pb.AnalyzeOptions(permutations=99, alpha=0.05, top_classes=1, skip_speed=True)), timeout=120)
    assert [item.layer for item in reply.layers] == ["logits", "rgb/conv3"]  # a layer the recording did not hold
    assert reply.permutations == 99 and not reply.speeds
    unit = reply.layers[0].units[0]
    assert len(unit.top_classes) == 1 and not unit.speed_curve and unit.p_value == pytest.approx(0.01)
    assert all(u.reliance["flow"] == 0.0 for u in reply.layers[1].units)


def test_bad_analyze_calls_get_clear_statuses(shared, recorded) -> None:
    info, labels = recorded
    call = shared.analysis.Analyze

    def asked(**fields):
        return pb.AnalyzeRequest(**{"model": "small", "recording": info.id, **fields})

    code, text = code_of(call, asked(recording="ghost"), timeout=10)
    assert code == grpc.StatusCode.NOT_FOUND and "no recording 'ghost'" in text
    code, text = code_of(call, asked(model="ghost"), timeout=10)
    assert code == grpc.StatusCode.NOT_FOUND and "ghost" in text
    code, text = code_of(call, asked(layers=["logits", "nope"]), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "layers[1]: model 'small' has no layer 'nope'" in text
    code, text = code_of(call, asked(options=pb.AnalyzeOptions(permutations=10)), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cannot reach p <= 0.01" in text
    code, text = code_of(call, asked(options=pb.AnalyzeOptions(speeds=[1.0, -2.0])), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "positive" in text
    code, text = code_of(call, asked(recording=""), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "name the recording" in text

    rgb, flow, _ = SyntheticActions().batch(6, seed=3)
    unlabelled = shared.rec.Record(requests("small", ["logits"], {"rgb": rgb, "flow": flow}), timeout=60)
    code, text = code_of(call, asked(recording=unlabelled.id), timeout=10)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no labelled clips" in text


def test_a_recording_past_the_kept_clip_limit_keeps_statistics_only(tmp_path) -> None:
    running = start(tmp_path / "store", limits=ServiceLimits(max_kept_clip_bytes=200_000))  # about two clips
    try:
        import_trained(running)
        rgb, flow, labels = SyntheticActions().batch(20, seed=1)
        info = running.rec.Record(requests("small", ["logits"], {"rgb": rgb, "flow": flow}, labels), timeout=60)
        assert info.clips == 20 and not info.clips_kept
        code, text = code_of(running.analysis.Analyze, pb.AnalyzeRequest(model="small", recording=info.id), timeout=10)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "kept no clips" in text and "200,000 bytes" in text
    finally:
        running.stop()


def test_recordings_stored_before_per_class_sums_and_kept_clips_still_load(shared, recorded) -> None:
    info, _ = recorded
    source = shared.store / "recordings" / info.id
    old_id = "0ld0" + info.id[4:]
    target = shared.store / "recordings" / old_id
    shutil.copytree(source, target)
    (target / CLIPS_FILE).unlink()
    with np.load(target / "stats.npz") as arrays:
        kept = {key: arrays[key] for key in arrays.files if "per_class_sum" not in key and "per_class_count" not in key}
    np.savez(target / "stats.npz", **kept)
    meta = json.loads((target / "meta.json").read_text())
    (target / "meta.json").write_text(json.dumps({**meta, "id": old_id, "name": ""}))

    old = shared.rec.GetRecording(pb.GetRecordingRequest(recording=old_id), timeout=30)
    assert not old.info.clips_kept and len(old.layers) == len(LAYERS)
    assert not old.layers[0].HasField("per_class_sum") and not old.layers[0].per_class_count
    assert tensors.from_tensor(old.layers[0].per_class_max).shape == (10, 10)
    code, _ = code_of(shared.analysis.Analyze, pb.AnalyzeRequest(model="small", recording=old_id), timeout=10)
    assert code == grpc.StatusCode.FAILED_PRECONDITION


# ---------------------------------------------------------------- evolution across checkpoints


def test_evolution_maximizes_each_checkpoint_and_equals_the_engine(shared) -> None:
    from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.evolution import evolution  # noqa: PLC0415
    from kinetoscope.server.importer import import_model  # noqa: PLC0415

    from .helpers import TRAINED, declarations, upload  # noqa: PLC0415

    early = TRAINED.with_name("two_stream_small.epoch1.onnx")
    first = shared.models.ImportModel(upload(early.read_bytes(), name="small-epoch1", inputs=declarations()), timeout=120)
    logits = [pb.Objective(terms=[pb.Target(kind=pb.Target.LOGIT, layer="logits", channel=c)]) for c in (4, 5)]
    with Client(f"127.0.0.1:{shared.port}") as client:  # the Python client's method, over the same RPC
        reply = client.evolution(["small-epoch1", "small"], logits, [(1.0, 1.0)],
                                 options=pb.MaximizeOptions(iterations=16, seed=0), timeout=300)
    assert list(reply.checkpoints) == [first.id, shared.model.id] and len(reply.units) == 2
    assert [(u.unit, u.setting, u.target.terms[0].channel) for u in reply.units] == [(0, 0, 4), (1, 0, 5)]

    inputs = ["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"]
    models = [import_model(path, inputs=inputs) for path in (early, TRAINED)]
    optimized = []
    for model in models:
        result = maximize(model, [Logit("logits", 4), Logit("logits", 5)], [Setting(kappa=1.0, gamma=1.0)],
                          MaximizeConfig(iterations=16, seed=0))
        optimized.append({spec.name: result.stacked(spec.name) for spec in model.inputs})
    expected = evolution(optimized, models[0].inputs)
    for unit in reply.units:
        measured = {item.input: item for item in unit.inputs}
        assert set(measured) == {"rgb", "flow"}
        for name in ("rgb", "flow"):
            np.testing.assert_allclose(measured[name].change, expected[name].change[:, unit.unit, 0], rtol=1e-5)
        np.testing.assert_allclose(measured["flow"].variation, expected["flow"].variation[:, unit.unit, 0], rtol=1e-5)
        assert all(np.isnan(measured["rgb"].variation)) and 0 < measured["flow"].change[0] < 2

    asked = pb.MaximizeRequest(objectives=logits, options=pb.MaximizeOptions(iterations=16, seed=0))
    code, message = code_of(shared.analysis.Evolution, pb.EvolutionRequest(checkpoints=["small"], maximize=asked),
                            timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "at least two" in message
    code, _ = code_of(shared.analysis.Evolution, pb.EvolutionRequest(checkpoints=["small", "nosuch"], maximize=asked),
                      timeout=30)
    assert code == grpc.StatusCode.NOT_FOUND
