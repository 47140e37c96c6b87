"""The gallery's recorded column is matched to units by the tensor name and channel each one maximized."""

from __future__ import annotations

import numpy as np

from kinetoscope.client.render import load_result, make_example_result, render_result
from kinetoscope.client.render.recorded import gallery_recording
from kinetoscope.client.types import LayerRecording, Recording, RecordingInfo, Target, targets_to_text


def _layer(name: str, channels: int, clips: int = 5, classes: int = 4) -> LayerRecording:
    """Channel c's top clips are c, c+1, ... (mod clips) with values 10c, 10c-1, ...; its class maxima are c + class."""
    top_index = np.array([[(c + k) % clips for k in range(3)] for c in range(channels)])
    per_class = np.array([[c + k for k in range(classes)] for c in range(channels)], dtype=np.float64)
    per_class[:, 2] = np.nan  # a class no clip had
    return LayerRecording(
        layer=name, max=np.arange(channels, dtype=np.float64), mean=np.zeros(channels), top_index=top_index,
        top_ids=[[f"clip{int(i)}" for i in row] for row in top_index],
        top_values=np.array([[10.0 * c - k for k in range(3)] for c in range(channels)]),
        histogram=np.zeros((channels, 2)), histogram_edges=np.array([0.0, 1.0, 2.0]), per_class_max=per_class,
    )


def _recording(**layers: int) -> Recording:
    info = RecordingInfo("rec1", "rec", "model", clips=5, layers=list(layers), created_at=0.0)
    return Recording(info, {name: _layer(name, channels) for name, channels in layers.items()})


def test_units_are_matched_by_their_structured_target(tmp_path) -> None:
    result = load_result(make_example_result(tmp_path / "result.npz"))  # conv5_fusion 3, logits 1, rgb/conv3_3 7
    recording = _recording(conv5_fusion=4, logits=4)
    clips = {"rgb": np.arange(5 * 3 * 2 * 2, dtype=np.float32).reshape(5, 3, 2, 2)}
    mapping = gallery_recording(recording, result, clips, ["a", "b", "c", "d"], top=2)
    assert mapping["class_names"] == ["a", "b", "c", "d"]
    assert list(mapping["units"]) == ["Channel('conv5_fusion', 3)", "Logit('logits', 1)"]  # rgb/conv3_3 not recorded
    fusion = mapping["units"]["Channel('conv5_fusion', 3)"]
    assert fusion["class_max"] == [3.0, 4.0, 0.0, 6.0]
    assert fusion["top_labels"] == ["clip3 (30)", "clip4 (29)"]
    assert [int(c["rgb"][0, 0, 0]) for c in fusion["top_clips"]] == [3 * 12, 4 * 12]
    assert mapping["units"]["Logit('logits', 1)"]["top_labels"] == ["clip1 (10)", "clip2 (9)"]


def test_units_without_a_single_target_or_out_of_range_get_no_entry(tmp_path) -> None:
    source = np.load(make_example_result(tmp_path / "full.npz"))
    content = {key: source[key] for key in source.files}
    content["units"] = np.array(["Channel('conv5_fusion', 3)", "a sum", "too far"])  # labels are never read
    content["unit_targets"] = np.array([targets_to_text(t) for t in (
        (Target("channel", "conv5_fusion", 1),),
        (Target("channel", "conv5_fusion", 0, (), 0.5), Target("channel", "conv5_fusion", 2, (), 0.5)),
        (Target("channel", "conv5_fusion", 9),),
    )])
    np.savez(tmp_path / "result.npz", **content)
    mapping = gallery_recording(_recording(conv5_fusion=4), load_result(tmp_path / "result.npz"))
    assert list(mapping["units"]) == ["Channel('conv5_fusion', 3)"] and "class_names" not in mapping
    assert mapping["units"]["Channel('conv5_fusion', 3)"]["top_labels"] == ["clip1 (10)", "clip2 (9)", "clip3 (8)"]
    assert "top_clips" not in mapping["units"]["Channel('conv5_fusion', 3)"]


def test_a_result_without_targets_gets_an_empty_column(tmp_path) -> None:
    source = np.load(make_example_result(tmp_path / "full.npz"))
    np.savez(tmp_path / "result.npz", **{key: source[key] for key in source.files if key != "unit_targets"})
    result = load_result(tmp_path / "result.npz")
    mapping = gallery_recording(_recording(conv5_fusion=4, logits=4), result)
    assert mapping == {"units": {}}
    page = render_result(tmp_path / "result.npz", tmp_path / "out", recording=mapping).read_text(encoding="utf-8")
    assert page.count("not in the recording") == 3 and "<svg" not in page
