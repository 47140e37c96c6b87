"""`kinetoscope record`: the JSON contract, the npz layout it reads, its errors, and `maximize --recording`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import kinetoscope.model_zoo as zoo
from kinetoscope.client.cli import main
from kinetoscope.model_zoo.synthetic import SyntheticActions

MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
CLIPS = 12


def _run_json(capsys, *argv: str):
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    rgb, flow, labels = SyntheticActions().batch(CLIPS, seed=3)
    path = tmp_path_factory.mktemp("clips") / "clips.npz"
    arrays = {"rgb": rgb, "flow": flow, "labels": labels, "ids": np.array([f"clip{i}" for i in range(CLIPS)])}
    np.savez(path, **arrays)
    return path, arrays


@pytest.fixture
def store(tmp_path, capsys) -> str:
    store = str(tmp_path / "store")
    _run_json(capsys, "--store", store, "import", str(MODEL), "--name", "small", "--input", "rgb=1x3x32x32:image",
              "--input", "flow=1x20x32x32:stacked_flow", "--json")
    return store


def test_record_json_contract(store, clips, capsys) -> None:
    path, arrays = clips
    doc = _run_json(capsys, "--store", store, "record", "small", "--clips", str(path), "--layers", "conv_fusion,logits",
                    "--top", "4", "--json")
    assert set(doc) == {"recording", "clips", "layers"}
    assert len(doc["recording"]) == 16 and doc["clips"] == CLIPS
    assert list(doc["layers"]) == ["conv_fusion", "logits"]
    graph = onnx.load(MODEL)
    graph.graph.output.append(onnx.helper.make_empty_tensor_value_info("conv_fusion"))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    fusion, logits = session.run(["conv_fusion", "logits"], {"rgb": arrays["rgb"], "flow": arrays["flow"]})
    for name, value in (("conv_fusion", fusion.reshape(CLIPS, 64, -1).max(-1)), ("logits", logits)):
        layer = doc["layers"][name]
        assert set(layer) == {"max", "mean", "top"}
        np.testing.assert_allclose(layer["max"], value.max(0), rtol=1e-5, atol=1e-5 * np.abs(value).max())
        np.testing.assert_allclose(layer["mean"], value.mean(0), rtol=1e-5, atol=1e-5 * np.abs(value).max())
        assert len(layer["top"]) == value.shape[1] and all(len(row) == 4 for row in layer["top"])
        assert [row[0] for row in layer["top"]] == np.argmax(value, 0).tolist()

    listed = _run_json(capsys, "--store", store, "maximize", "small", "--layer", "conv_fusion", "--units", "0",
                       "--iters", "2", "--recording", doc["recording"], "--out", str(Path(store) / "out"), "--json")
    assert not any("no recording" in w for w in listed["warnings"])


def test_record_errors_are_clear(store, clips, tmp_path, capsys) -> None:
    _, arrays = clips
    lacking = tmp_path / "lacking.npz"
    np.savez(lacking, rgb=arrays["rgb"], extra=arrays["labels"])
    code = main(["--store", store, "record", "small", "--clips", str(lacking), "--layers", "conv_fusion", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "missing flow" in captured.err and "unknown extra" in captured.err

    code = main(["--store", store, "record", "small", "--clips", str(clips[0]), "--layers", "nope", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.startswith("kinetoscope record: ") and "no layer 'nope'" in captured.err

    code = main(["--store", store, "record", "small", "--videos", str(tmp_path / "none"), "--layers", "conv_fusion"])
    captured = capsys.readouterr()
    assert code == 2 and ("is not a folder" in captured.err or "--videos needs video decoding" in captured.err)


def _write_video(path: Path, frames: np.ndarray) -> None:
    import av  # noqa: PLC0415

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.mark.skipif(importlib.util.find_spec("kinetoscope.client.video") is None, reason="no video decoding here")
def test_record_from_a_folder_of_videos_labels_clips_by_class_folder(store, tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    for name in ("red_disc_right", "blue_disc_left"):  # classes 0 and 3 of the trained model
        (tmp_path / "videos" / name).mkdir(parents=True)
        _write_video(tmp_path / "videos" / name / "a.mp4", rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8))
    doc = _run_json(capsys, "--store", store, "record", "small", "--videos", str(tmp_path / "videos"),
                    "--layers", "logits", "--json")
    assert doc["clips"] == 2
    from kinetoscope.client.client import Client  # noqa: PLC0415

    with Client(store=store) as client:
        recording = client.get_recording(doc["recording"])
    logits = recording.layers["logits"]
    assert sorted(i for row in logits.top_ids for i in row) == sorted(["blue_disc_left/a.mp4#0", "red_disc_right/a.mp4#0"] * 10)
    seen = ~np.isnan(logits.per_class_max).all(axis=0)
    assert np.flatnonzero(seen).tolist() == [0, 3]


def test_render_shows_per_class_maxima_and_top_clips_from_a_recording(store, clips, capsys, tmp_path) -> None:
    path, arrays = clips
    recorded = _run_json(capsys, "--store", store, "record", "small", "--clips", str(path), "--layers", "conv_fusion",
                         "--top", "3", "--json")
    result = _run_json(capsys, "--store", store, "maximize", "small", "--layer", "conv_fusion", "--units", "0,5",
                       "--iters", "4", "--recording", recorded["recording"], "--out", str(tmp_path / "out"), "--json")
    gallery = _run_json(capsys, "--store", store, "render", result["result"], "--recording", recorded["recording"],
                        "--clips", str(path), "--json")
    page = Path(gallery["index"]).read_text()
    assert page.count("<svg") >= 2, "one per-class bar chart per unit"
    top = recorded["layers"]["conv_fusion"]["top"]
    for channel in (0, 5):
        assert f"clip{top[channel][0]} (" in page, "the top clip is named by its id, with its value"
    media = list((Path(gallery["index"]).parent / "media").iterdir())
    assert any("top" in p.name for p in media), "top clips are rendered as thumbnails"
