"""SIGKILL during an import and during a recording: after a restart nothing partial is stored and nothing stored is lost."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from kinetoscope.server.recordings import RecordingStore
from kinetoscope.server.store import ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb
from tests.service.helpers import TRAINED, channel_objectives, collect, declarations, upload

from .process import launch
from .record_stream import clip_requests


def _digest(store: Path) -> dict[str, str]:
    """Every file of the store (hidden ones too) → sha256."""
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(store.rglob("*")) if p.is_file()}


def _hidden(store: Path) -> list[str]:
    return [p.name for folder in (store / "models", store / "recordings") if folder.is_dir()
            for p in folder.iterdir() if p.name.startswith(".")]


def _slow_model() -> bytes:
    """Three 64-channel 3x3 convs over 512x512, flattened to a fixed length: valid, verifiable only at its declared
    size (a smaller probe cannot take the fixed reshape), and seconds to verify there on one core."""
    rng = np.random.default_rng(0)
    nodes, inits, previous = [], [], "x"
    for i in range(3):
        inits.append(numpy_helper.from_array((rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        previous = f"c{i}"
    features = 64 * 512 * 512
    inits.append(numpy_helper.from_array(np.array([1, features], np.int64), "flat"))
    nodes.append(helper.make_node("Reshape", [previous, "flat"], ["y"], name="flatten"))
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 512, 512])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, features])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _populate(server) -> tuple[pb.ModelInfo, pb.Recording]:
    info = server.models.ImportModel(upload(TRAINED.read_bytes(), name="kept", inputs=declarations()), timeout=300)
    recording = server.rec.Record(iter(clip_requests("kept", 4)), timeout=300)
    return info, server.rec.GetRecording(pb.GetRecordingRequest(recording=recording.id), timeout=30)


def _check_intact(server, info: pb.ModelInfo, recording: pb.Recording) -> None:
    assert [m.id for m in server.models.ListModels(pb.ListModelsRequest(), timeout=30).models] == [info.id]
    assert server.models.GetModel(pb.GetModelRequest(model=info.id), timeout=30).info == info
    assert server.rec.GetRecording(pb.GetRecordingRequest(recording=recording.info.id), timeout=30) == recording
    request = pb.MaximizeRequest(model="kept", objectives=channel_objectives("conv_fusion", [3]),
                                 options=pb.MaximizeOptions(iterations=3))
    got = collect(server.vis.Maximize(request, timeout=300))  # the stored bytes load and run
    assert got.inputs[(0, 0)]["rgb"].shape == (3, 32, 32)
    assert server.serving()


@pytest.mark.slow
def test_sigkill_during_an_import_and_a_recording(tmp_path) -> None:
    store = tmp_path / "store"
    first = launch(store)
    try:
        info, recording = _populate(first)
    except BaseException:
        first.stop()
        raise
    before = _digest(store)

    # 1. killed while a model imports (the child is verifying it)
    errors: list[grpc.RpcError] = []
    victim = threading.Thread(target=lambda: _expect_error(errors, first.models.ImportModel, upload(
        _slow_model(), name="victim"), timeout=300), daemon=True)
    victim.start()
    first.wait_for_log(r"importing 'victim'")
    time.sleep(0.5)
    first.kill()
    victim.join(60)
    gone = first.group_gone()
    first.stop()
    assert errors and errors[0].code() == grpc.StatusCode.UNAVAILABLE
    assert gone, "the forkserver or an import child outlived the killed server"

    second = launch(store)
    try:
        assert _digest(store) == before and not _hidden(store)
        _check_intact(second, info, recording)
        before = _digest(store)

        # 2. killed while a recording streams in (half of the clips sent)
        release = threading.Event()
        sent = threading.Semaphore(0)
        stream = clip_requests("kept", 8, pause_after=4, release=release, sent=sent)
        recorder = threading.Thread(target=lambda: _expect_error(errors, second.rec.Record, stream, timeout=300), daemon=True)
        recorder.start()
        for _ in range(4):
            assert sent.acquire(timeout=120)
        time.sleep(0.5)
        second.kill()
        release.set()
        recorder.join(60)
        assert errors[-1].code() == grpc.StatusCode.UNAVAILABLE and len(errors) == 2
        assert second.group_gone()
        print(f"FIGURE restart_to_serving_s={second.started_s:.2f}")
    finally:
        second.stop()

    third = launch(store)
    print(f"FIGURE restart_to_serving_s={third.started_s:.2f}")
    try:
        assert not _hidden(store)
        assert _digest(store) == before
        _check_intact(third, info, recording)
        assert [r.id for r in third.rec.ListRecordings(pb.ListRecordingsRequest(), timeout=30).recordings] == [recording.info.id]
    finally:
        third.stop()


def _expect_error(errors: list, call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        errors.append(error)


# ------------------------------------------------------------ the stores' own crash recovery

_WRITER = """
import sys
from kinetoscope.server.store import ModelStore
ModelStore(sys.argv[1]).put("0123456789abcdef", b"x" * (1 << 30), {"name": "huge"})
"""


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_writer_killed_mid_put_leaves_nothing_after_reopening(tmp_path) -> None:
    store = ModelStore(tmp_path)
    kept = store.put("aaaaaaaaaaaaaaaa", b"model", {"name": "kept"})
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)])
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".partial-") for p in store.models.iterdir()):
            assert time.monotonic() < deadline and writer.poll() is None, "the writer never started writing"
            time.sleep(0.01)
    finally:
        writer.kill()
        writer.wait()
    assert any(p.name.startswith(".partial-") for p in store.models.iterdir())
    reopened = ModelStore(tmp_path)
    assert sorted(p.name for p in reopened.models.iterdir()) == [kept.id]
    assert reopened.get("kept").model_bytes() == b"model"


def test_a_replacement_cut_short_restores_the_previous_entry(tmp_path) -> None:
    store = ModelStore(tmp_path)
    store.put("bbbbbbbbbbbbbbbb", b"first", {"name": "m"})
    dead = _dead_pid()
    # what a writer killed between setting the old folder aside and renaming the new one in leaves
    aside = store.models / f".replaced-{dead}-bbbbbbbbbbbbbbbb-x1"
    aside.mkdir()
    (store.models / "bbbbbbbbbbbbbbbb").rename(aside / "entry")
    (store.models / f".partial-{dead}-bbbbbbbbbbbbbbbb-x2").mkdir()
    reopened = ModelStore(tmp_path)
    assert sorted(p.name for p in reopened.models.iterdir()) == ["bbbbbbbbbbbbbbbb"]
    assert reopened.get("m").model_bytes() == b"first"


def test_a_live_writers_folders_are_left_alone(tmp_path) -> None:
    store = ModelStore(tmp_path)
    live = store.models / f".partial-1-cccccccccccccccc-x"  # pid 1 is always alive
    live.mkdir()
    ModelStore(tmp_path)
    assert live.is_dir()


def test_recordings_left_half_written_are_cleared(tmp_path) -> None:
    RecordingStore(tmp_path)
    partial = tmp_path / "recordings" / f".partial-{_dead_pid()}-dddddddddddddddd-x"
    partial.mkdir()
    (partial / "stats.npz").write_bytes(b"half")
    assert RecordingStore(tmp_path).list() == [] and not partial.exists()


def test_re_importing_the_same_model_replaces_it_in_one_step(tmp_path) -> None:
    store = ModelStore(tmp_path)
    store.put("eeeeeeeeeeeeeeee", b"same", {"name": "old"})
    store.put("eeeeeeeeeeeeeeee", b"same", {"name": "new"})
    assert [m.name for m in store.list()] == ["new"]
    assert sorted(p.name for p in store.models.iterdir()) == ["eeeeeeeeeeeeeeee"]
