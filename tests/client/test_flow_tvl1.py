"""TV-L1 optical flow, the estimator two-stream networks were trained with, and DIS on request.

The clips are the synthetic moving shapes (`kinetoscope.model_zoo.synthetic`), whose
flow is exact, written to lossless FFV1 files and decoded again as a user's videos are.
Measured on the four clips below (32×32, estimated at 96×96): TV-L1's mean end-point
error over the moving shape is 0.05–0.11 px/frame, DIS's 0.03–0.07, and over the whole
frame 0.03–0.04 (TV-L1) and 0.03–0.08 (DIS). A failed estimate that sees no motion
scores 1–2 px/frame over the shape, the shapes' speed, so the bounds here (0.3 over
the shape, 0.1 over the frame) leave about 3× headroom and still catch it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from kinetoscope.client.flow import FLOW_BOUND, optical_flow, tvl1_available
from kinetoscope.client.video import clips_from_videos, decode
from kinetoscope.model_zoo.synthetic import DEFAULT_CLASSES, make_clip

pytestmark = pytest.mark.skipif(not tvl1_available(), reason="this OpenCV build has no cv2.optflow")

FRAMES = 5
SEED = 1
CLASSES = ("red_disc_right", "red_disc_left", "green_square_up_slow", "orange_triangle_up_left")
SHAPE_EPE, FRAME_EPE = 0.3, 0.1  # px/frame; see the module docstring
MODEL = Path(importlib.util.find_spec("kinetoscope.model_zoo").origin).parent / "trained" / "two_stream_small.onnx"


def clip_on_disk(tmp_path: Path, name: str, frames: int = FRAMES):
    """A synthetic clip of class `name` as a lossless video file, decoded back; with its exact flow and mask."""
    label = [spec.name for spec in DEFAULT_CLASSES].index(name)
    clip = make_clip(label, seed=SEED, size=32, frames=frames)
    pixels = np.ascontiguousarray((clip.video + 128).astype(np.uint8).transpose(1, 2, 3, 0))
    path = tmp_path / f"{name}.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "bgr0"
        for frame in pixels:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    decoded = decode(path)
    assert np.array_equal(decoded, pixels)
    return decoded, clip


def check_against_truth(flow: np.ndarray, clip) -> None:
    """Mean flow over the moving shape points the true way at about the true speed; small end-point errors."""
    moving = clip.mask[:-1]
    truth = np.array([clip.flow[:, 0][moving].mean(), clip.flow[:, 1][moving].mean()])
    mean = np.array([flow[:, 0][moving].mean(), flow[:, 1][moving].mean()])
    cosine = mean @ truth / (np.linalg.norm(mean) * np.linalg.norm(truth))
    ratio = np.linalg.norm(mean) / np.linalg.norm(truth)
    assert cosine > 0.9, f"mean flow {mean} points away from the true {truth} (cosine {cosine:.3f})"
    assert 0.8 < ratio < 1.2, f"mean flow {mean} is {ratio:.2f}× the true {truth}"
    error = np.linalg.norm(flow - clip.flow, axis=1)
    assert error[moving].mean() < SHAPE_EPE, f"end-point error over the shape {error[moving].mean():.3f} px/frame"
    assert error.mean() < FRAME_EPE, f"end-point error over the frame {error.mean():.3f} px/frame"


@pytest.mark.parametrize("name", CLASSES)
def test_tvl1_is_the_default_and_follows_the_shapes(tmp_path, name, monkeypatch) -> None:
    frames, clip = clip_on_disk(tmp_path, name)
    calls = spy(monkeypatch, "optflow", "DualTVL1OpticalFlow_create")
    flow = optical_flow(frames)
    assert len(calls) == 1
    assert flow.shape == (FRAMES - 1, 2, 32, 32) and flow.dtype == np.float32
    check_against_truth(flow, clip)


@pytest.mark.parametrize("name", CLASSES)
def test_dis_when_asked(tmp_path, name, monkeypatch) -> None:
    frames, clip = clip_on_disk(tmp_path, name)
    tvl1 = spy(monkeypatch, "optflow", "DualTVL1OpticalFlow_create")
    check_against_truth(optical_flow(frames, method="dis"), clip)
    assert tvl1 == []


def test_tvl1_uses_the_two_stream_parameters(monkeypatch) -> None:
    calls = spy(monkeypatch, "optflow", "DualTVL1OpticalFlow_create")
    optical_flow(np.zeros((2, 32, 32, 3), dtype=np.uint8))  # OpenCV drops pyramid levels for tiny frames
    estimator = calls[0]
    assert (estimator.getTau(), estimator.getLambda(), estimator.getTheta()) == pytest.approx((0.25, 0.15, 0.3))
    assert (estimator.getScalesNumber(), estimator.getWarpingsNumber(), estimator.getMedianFiltering()) == (5, 5, 5)
    assert estimator.getEpsilon() == pytest.approx(0.01) and estimator.getScaleStep() == pytest.approx(0.8)


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_flow_is_scaled_back_to_the_frames_and_clipped_to_20_px(monkeypatch, method) -> None:
    import kinetoscope.client.flow as flow_module

    class Uniform:  # a stand-in estimator: 15 px/frame right, 90 down, at the 3× upsampled size
        def calc(self, first, second, _):
            field = np.empty((*first.shape, 2), dtype=np.float32)
            field[..., 0], field[..., 1] = 15.0, 90.0
            return field

    monkeypatch.setattr(flow_module, "_estimator", lambda _: Uniform())
    flow = optical_flow(np.zeros((3, 32, 32, 3), dtype=np.uint8), method=method)  # 32 → 96 for estimation
    assert flow.shape == (2, 2, 32, 32)
    assert np.allclose(flow[:, 0], 5.0)  # 15 px at 96 is 5 px at 32
    assert np.all(flow[:, 1] == FLOW_BOUND)  # 30 px at 32, clipped


def test_a_missing_tvl1_or_an_unknown_method_is_a_clear_error(tmp_path, monkeypatch) -> None:
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="unknown flow method 'brox'; use one of tvl1, dis"):
        optical_flow(frames, method="brox")
    monkeypatch.delattr(cv2, "optflow")
    with pytest.raises(ValueError, match="install opencv-contrib-python-headless"):
        optical_flow(frames)
    assert optical_flow(frames, method="dis").shape == (1, 2, 8, 8)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "never_decoded.mp4").write_bytes(b"not a video")
    spec = [{"name": "flow", "shape": (1, 2, 8, 8), "kind": "stacked_flow", "layout": "NCHW"}]
    with pytest.raises(ValueError, match="use the faster DIS"):  # before any video is decoded
        clips_from_videos(tmp_path, spec)


def videos_folder(tmp_path: Path) -> Path:
    """`videos/red_disc_right/<one clip>`, long enough for the two-stream model's 10 stacked fields."""
    (tmp_path / "videos" / "red_disc_right").mkdir(parents=True)
    clip_on_disk(tmp_path / "videos" / "red_disc_right", "red_disc_right", frames=11)
    return tmp_path / "videos"


def test_record_reads_videos_with_tvl1_by_default(tmp_path, monkeypatch) -> None:
    from kinetoscope.client.commands import videos_as_clips
    from kinetoscope.client.types import InputInfo

    info = SimpleNamespace(name="small", class_names=["red_disc_right"], inputs=[
        InputInfo("rgb", (1, 3, 32, 32), "image", (-128.0, 127.0), "NCHW"),
        InputInfo("flow", (1, 20, 32, 32), "stacked_flow", (-128.0, 127.0), "NCHW"),
    ])
    folder = videos_folder(tmp_path)
    tvl1 = spy(monkeypatch, "optflow", "DualTVL1OpticalFlow_create")
    dis = spy(monkeypatch, None, "DISOpticalFlow_create")
    found = videos_as_clips(folder, info)
    assert len(tvl1) == 1 and dis == []
    assert found["flow"].shape == (1, 20, 32, 32) and found["labels"].tolist() == [0]
    x, y = found["flow"][0, 0::2], found["flow"][0, 1::2]  # ×16: the disc moves 2 px/frame = 32 to the right
    moving = np.hypot(x, y) > 8
    assert moving.sum() > 50 and 24 < x[moving].mean() < 40 and abs(y[moving].mean()) < 4


@pytest.mark.slow
def test_record_command_with_videos_uses_tvl1_by_default(tmp_path, monkeypatch, capsys) -> None:
    from kinetoscope.client.cli import main

    store = str(tmp_path / "store")
    assert main(["--store", store, "import", str(MODEL), "--name", "small", "--input", "rgb=1x3x32x32:image",
                 "--input", "flow=1x20x32x32:stacked_flow", "--json"]) == 0
    folder = videos_folder(tmp_path)
    tvl1 = spy(monkeypatch, "optflow", "DualTVL1OpticalFlow_create")
    dis = spy(monkeypatch, None, "DISOpticalFlow_create")
    capsys.readouterr()
    code = main(["--store", store, "record", "small", "--videos", str(folder), "--layers", "logits", "--json"])
    assert code == 0, capsys.readouterr().err
    assert len(tvl1) == 1 and dis == []


def spy(monkeypatch, module: str | None, factory: str) -> list:
    """Wraps an OpenCV factory so that the test sees every estimator it creates."""
    owner = getattr(cv2, module) if module else cv2
    original = getattr(owner, factory)
    created: list = []

    def wrapper(*args, **kwargs):
        created.append(original(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr(owner, factory, wrapper)
    return created
