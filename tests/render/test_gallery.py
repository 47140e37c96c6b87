"""The gallery: one row per unit, one column per setting, and only links to files that exist."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kinetoscope.client.render import load_result, main, make_example_result, render_result
from kinetoscope.client.render.gallery import bar_chart_svg, describe_setting, describe_unit
from kinetoscope.client.types import Target, targets_to_text


class _Collect(HTMLParser):
    """Collects every tag with its attributes, and the page text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(index: Path) -> _Collect:
    parser = _Collect()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


def _references(page: _Collect) -> list[str]:
    return [attrs[key] for _, attrs in page.tags for key in ("src", "href") if attrs.get(key)]


def _assert_references_exist(index: Path) -> list[str]:
    references = _references(_parse(index))
    assert references
    for reference in references:
        assert "://" not in reference and not reference.startswith("/"), reference
        target = (index.parent / reference).resolve()
        assert target.is_file() and target.stat().st_size > 0, reference
        assert index.parent.resolve() in target.parents
    return references


def test_gallery_has_a_row_per_unit_and_a_cell_per_setting(tmp_path) -> None:
    index = render_result(make_example_result(tmp_path / "run" / "result.npz", gammas=(10, 5, 1, 0)), tmp_path / "out")
    assert index == tmp_path / "out" / "index.html"
    page = _parse(index)
    cells = [attrs for tag, attrs in page.tags if tag == "td" and attrs.get("class") == "cell"]
    assert len(cells) == 3 * 4
    assert {(c["data-unit"], c["data-setting"]) for c in cells} == {(str(u), str(s)) for u in range(3) for s in range(4)}
    videos = [attrs for tag, attrs in page.tags if tag == "video"]
    # two units are fed by flow, in all four settings; the appearance-only unit is not
    assert len(videos) == 2 * 4
    for video in videos:
        assert {"autoplay", "muted", "loop", "playsinline"} <= set(video)
        assert video["src"].endswith(".mp4")
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert sum(src.endswith(".gif") for src in images) == 2 * 4
    assert sum(src.endswith(".png") for src in images) == 3 * 4
    text = " ".join(page.text)
    assert "Billiards" in text  # Logit('logits', 1) with class names
    assert "not connected" in text
    assert "γ = 0, κ = 1: temporal variation unconstrained" in text
    assert "activation" in text


def test_gallery_references_only_files_that_exist(tmp_path) -> None:
    index = render_result(make_example_result(tmp_path / "result.npz"), tmp_path / "gallery")
    references = _assert_references_exist(index)
    assert all(reference.startswith("media/") for reference in references)


def test_media_show_the_stored_inputs(tmp_path) -> None:
    path = make_example_result(tmp_path / "result.npz", size=32, frames=6)
    index = render_result(path, tmp_path / "out")
    flow_gif = Image.open(tmp_path / "out" / "media" / "u000_s00_flow.gif")
    assert flow_gif.n_frames == 6 and flow_gif.size == (128, 128)
    rgb = np.asarray(Image.open(index.parent / "media" / "u000_s00_rgb.png").convert("RGB"))
    assert rgb.shape == (128, 128, 3) and rgb.min() == 0 and rgb.max() == 255


def test_default_output_is_beside_the_result(tmp_path) -> None:
    index = render_result(make_example_result(tmp_path / "run" / "result.npz"))
    assert index == tmp_path / "run" / "index.html" and (tmp_path / "run" / "media").is_dir()


@pytest.mark.parametrize("channel_last", [False, True])
def test_3d_model_videos_render_in_either_layout(tmp_path, channel_last: bool) -> None:
    path = make_example_result(tmp_path / "result.npz", model="video3d", frames=4, channel_last=channel_last)
    result = load_result(path)
    assert [(s.name, s.kind, s.layout) for s in result.inputs] == [("video", "video", "THWC" if channel_last else "CTHW")]
    index = render_result(path, tmp_path / "out")
    _assert_references_exist(index)
    assert Image.open(tmp_path / "out" / "media" / "u000_s00_video.gif").n_frames == 4


def test_files_without_the_optional_keys_are_inferred(tmp_path) -> None:
    source = np.load(make_example_result(tmp_path / "full.npz", with_class_names=False))
    bare = {key: source[key] for key in ("rgb", "flow", "units", "gammas", "kappas", "activation")}
    np.savez(tmp_path / "result.npz", **bare)
    result = load_result(tmp_path / "result.npz")
    assert [(s.name, s.kind) for s in result.inputs] == [("rgb", "image"), ("flow", "stacked_flow")]
    assert result.class_names is None
    assert not result.optimized[2].any(axis=0)[1]  # all-zero flow for the appearance-only unit
    index = render_result(tmp_path / "result.npz", tmp_path / "out")
    assert "not connected" in index.read_text(encoding="utf-8")


def test_recording_adds_top_clips_and_a_bar_chart_per_unit(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = make_example_result(tmp_path / "result.npz")
    recording = {
        "class_names": ["ApplyEyeMakeup", "Billiards", "PlayingTabla", "YoYo"],
        "units": {
            "Channel('conv5_fusion', 3)": {
                "top_clips": [{"rgb": rng.normal(size=(3, 32, 32)), "flow": rng.normal(size=(12, 32, 32))}] * 2,
                "top_labels": ["clip 4 · Billiards", "clip 9 · YoYo"],
                "class_max": [1.0, 9.5, 3.0, 0.5],
            },
            1: {"top_clips": [rng.normal(size=(3, 32, 32))], "class_max": [0.2, 4.0, 1.0, 0.0]},
        },
    }
    index = render_result(path, tmp_path / "out", recording=recording)
    _assert_references_exist(index)
    page = _parse(index)
    assert sum(1 for tag, attrs in page.tags if tag == "svg") == 2
    assert sum(1 for tag, _ in page.tags if tag == "rect") == 8
    top_clip_images = [attrs["src"] for tag, attrs in page.tags if tag == "img" and "_top" in attrs["src"]]
    assert len(top_clip_images) == 2 * 2 + 1
    assert any(src.endswith("_flow.gif") for src in top_clip_images)
    text = " ".join(page.text)
    assert "clip 4 · Billiards" in text and "not in the recording" in text
    assert "max per class: Billiards 9.5" in text


def test_bar_chart_marks_the_strongest_class() -> None:
    svg = bar_chart_svg([1.0, 5.0, -2.0], ["a", "b", "c"])
    assert svg.count("<rect") == 3 and svg.count("#d62728") == 1
    assert "<title>b: 5</title>" in svg and "max per class: b 5, a 1, c -2" in svg


def test_units_and_settings_are_named_like_the_paper() -> None:
    logit = Target("logit", "logits", 2)
    assert describe_unit("Logit('logits', 2)", logit, ["x", "y", "Archery"]) == ("logits · class 2", "Archery")
    assert describe_unit("Logit('logits', 2)", logit, None) == ("logits · class 2", None)
    assert describe_unit("Logit('logits', 2)", logit, ["x", "y"]) == ("logits · class 2", None)  # too few names
    assert describe_unit("c", Target("channel", "conv5_fusion", 3), ["x"]) == ("conv5_fusion · channel 3", None)
    assert describe_unit("n", Target("neuron", "conv", 5, (0, 6)), None) == ("conv · neuron 5", None)
    assert describe_unit("Sum(...)", None, ["x"]) == ("Sum(...)", None)
    assert "isotropic" in describe_setting(2.5, 2.5)
    assert "anisotropic, slower" in describe_setting(10, 1)
    assert "unconstrained" in describe_setting(0, 1)


def test_main_prints_the_index_and_rejects_a_bad_file(tmp_path, capsys) -> None:
    path = make_example_result(tmp_path / "result.npz")
    assert main([str(path), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "index.html")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert main([str(tmp_path / "other.npz")]) == 2
    assert "'units'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.npz")]) == 2


def test_module_runs_and_leaves_torch_out(tmp_path) -> None:
    path = make_example_result(tmp_path / "result.npz")
    code = (
        "import runpy, sys; sys.argv = ['render', sys.argv[1], '--out', sys.argv[2]]\n"
        "try:\n    runpy.run_module('kinetoscope.client.render', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out")],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(tmp_path / "out" / "index.html"), "False"]


def _unit_headings(index: Path) -> list[str]:
    """The text of each row's unit heading, in row order."""

    class Headings(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[str] = []
            self.depth = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "th" and ("scope", "row") in attrs:
                self.rows.append("")
                self.depth = 1
            elif self.depth:
                self.depth += 1
                self.rows[-1] += "|"

        def handle_endtag(self, tag: str) -> None:
            if self.depth:
                self.depth -= 1

        def handle_data(self, data: str) -> None:
            if self.depth:
                self.rows[-1] += data

    parser = Headings()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.rows


def test_headings_come_from_the_structured_target_not_the_label(tmp_path) -> None:
    source = np.load(make_example_result(tmp_path / "full.npz"))
    content = {key: source[key] for key in source.files}
    # labels that say nothing parseable, and targets that differ from what the example's labels claim
    content["units"] = np.array(["first", "second", "third"])
    content["unit_targets"] = np.array([targets_to_text(t) for t in (
        (Target("neuron", "mixed_5c", 4, (1, 2, 3)),),
        (Target("logit", "fc8", 3),),
        (Target("channel", "fc8", 0, (), 0.5), Target("channel", "mixed_5c", 1, (), 0.5)),  # a sum: no single target
    )])
    np.savez(tmp_path / "result.npz", **content)
    index = render_result(tmp_path / "result.npz", tmp_path / "out")
    assert _unit_headings(index) == ["mixed_5c · neuron 4|first", "fc8 · class 3|YoYo|second", "third|third"]
    assert "<title>kinetoscope · fc8, mixed_5c</title>" in index.read_text(encoding="utf-8")


def test_example_result_headings_name_layer_channel_and_class(tmp_path) -> None:
    index = render_result(make_example_result(tmp_path / "result.npz"), tmp_path / "out")
    assert _unit_headings(index) == [
        "conv5_fusion · channel 3|Channel('conv5_fusion', 3)",
        "logits · class 1|Billiards|Logit('logits', 1)",
        "rgb/conv3_3 · channel 7|Channel('rgb/conv3_3', 7)",
    ]
    assert "<title>kinetoscope · conv5_fusion, logits, rgb/conv3_3</title>" in index.read_text(encoding="utf-8")


def test_a_result_without_targets_renders_labels_without_headings(tmp_path) -> None:
    source = np.load(make_example_result(tmp_path / "full.npz"))
    np.savez(tmp_path / "result.npz", **{key: source[key] for key in source.files if key != "unit_targets"})
    assert load_result(tmp_path / "result.npz").targets == ()
    index = render_result(tmp_path / "result.npz", tmp_path / "out")
    labels = [str(u) for u in source["units"]]
    assert _unit_headings(index) == [f"{label}|{label}" for label in labels]  # no class name although classes are known
    page = index.read_text(encoding="utf-8")
    assert "<title>kinetoscope · maximization result</title>" in page and "class-name" not in page.split("</style>")[1]
