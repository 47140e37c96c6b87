"""Video files → model inputs: decoding, clip sampling, optical flow and input layouts.

The videos are written here with PyAV: a bright square on a textured background
moving right, left, up or down at 2 px/frame, so the true flow is known.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from kinetoscope.client.types import InputInfo
from kinetoscope.client.video import (
    clips_from_videos, decode, optical_flow, sample_clips, to_inputs, tvl1_available,
)

SIZE, FRAMES, SQUARE, SPEED = 48, 12, 10, 2
DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
CODECS = {"mp4": ("libx264", "yuv420p"), "avi": ("mpeg4", "yuv420p"), "mkv": ("mjpeg", "yuvj420p")}

TWO_STREAM = [
    InputInfo("rgb", (1, 3, 32, 32), "image", (-128.0, 127.0), "NCHW"),
    InputInfo("flow", (1, 20, 32, 32), "stacked_flow", (-128.0, 127.0), "NCHW"),
]
VIDEO_3D = [InputInfo("video", (1, 3, 8, 32, 32), "video", (-128.0, 127.0), "NCTHW")]


# ---------------------------------------------------------------- test videos


def moving_square(direction: tuple[int, int], *, size: int = SIZE, frames: int = FRAMES, seed: int = 0):
    """Frames `[T, H, W, 3]` uint8 and the square's masks `[T, H, W]`, moving SPEED px/frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(50, 150, (size // 6, size // 6, 3)).astype(np.float32)
    background = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (size, size, 3))
    dx, dy = direction
    video, masks = [], []
    for t in range(frames):
        frame = background.copy()
        x0 = (size - SQUARE) // 2 + dx * SPEED * (t - frames // 2)
        y0 = (size - SQUARE) // 2 + dy * SPEED * (t - frames // 2)
        frame[y0 : y0 + SQUARE, x0 : x0 + SQUARE] = (240, 225, 70)
        frame[y0 + 2 : y0 + 5, x0 + 2 : x0 + 5] = (30, 30, 200)  # a mark, so the square has inner texture
        mask = np.zeros((size, size), dtype=bool)
        mask[y0 : y0 + SQUARE, x0 : x0 + SQUARE] = True
        video.append(np.clip(frame, 0, 255).astype(np.uint8))
        masks.append(mask)
    return np.stack(video), np.stack(masks)


def write_video(path: Path, frames: np.ndarray, codec: str, pix_fmt: str, **options: str) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """`root/<direction>/{a.mp4, b.avi}` plus a corrupt file and a non-video file."""
    root = tmp_path_factory.mktemp("videos")
    for seed, (name, direction) in enumerate(DIRECTIONS.items()):
        (root / name).mkdir()
        frames, _ = moving_square(direction, seed=seed)
        write_video(root / name / "a.mp4", frames, *CODECS["mp4"])
        write_video(root / name / "b.avi", frames, *CODECS["avi"])
    (root / "up" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    (root / "up" / "notes.txt").write_text("not a video, ignored")
    return root


def mean_flow(flow: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean (dx, dy) over the square's pixels in the first frame of each pair."""
    region = masks[: len(flow)]
    return np.array([flow[:, 0][region].mean(), flow[:, 1][region].mean()])


def assert_points(vector: np.ndarray, truth: np.ndarray, *, tolerance: float = 0.3) -> None:
    cosine = float(vector @ truth / (np.linalg.norm(vector) * np.linalg.norm(truth)))
    ratio = float(np.linalg.norm(vector) / np.linalg.norm(truth))
    assert cosine >= 0.9, f"flow {vector} points away from {truth} (cosine {cosine:.3f})"
    assert abs(ratio - 1) <= tolerance, f"flow {vector} has {ratio:.2f}× the true magnitude {truth}"


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_decode_gives_every_frame_at_the_requested_size(tmp_path, ext) -> None:
    frames, _ = moving_square((1, 0))
    path = write_video(tmp_path / f"clip.{ext}", frames, *CODECS[ext])
    full = decode(path)
    assert full.shape == (FRAMES, SIZE, SIZE, 3) and full.dtype == np.uint8
    assert np.abs(full.astype(int) - frames).mean() < 12  # lossy, but the same picture
    assert decode(path, size=32).shape == (FRAMES, 32, 32, 3)
    assert decode(path, size=(24, 40)).shape == (FRAMES, 24, 40, 3)


def test_decode_reads_a_gif(tmp_path) -> None:
    from PIL import Image

    frames, _ = moving_square((0, 1))
    path = tmp_path / "clip.gif"
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    assert decode(path, size=32).shape == (FRAMES, 32, 32, 3)


def test_decode_keeps_the_aspect_by_centre_cropping(tmp_path) -> None:
    frames = np.zeros((4, 48, 64, 3), dtype=np.uint8)
    frames[..., 2] = 220  # blue middle
    frames[:, :, :8, 0] = frames[:, :, -8:, 0] = 220  # red bands that a square crop removes
    frames[:, :, :8, 2] = frames[:, :, -8:, 2] = 0
    path = write_video(tmp_path / "wide.mp4", frames, "libx264", "yuv444p", crf="0")
    square = decode(path, size=32).astype(int)
    assert square.shape == (4, 32, 32, 3)
    assert square[..., 0].max() < 60 and square[..., 2].min() > 160


def test_corrupt_file_is_a_decoding_error(tmp_path) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises((av.FFmpegError, ValueError, OSError)):
        decode(path)


# ---------------------------------------------------------------- clips


def test_sample_clips_are_evenly_spaced() -> None:
    frames = np.arange(20)[:, None, None, None] * np.ones((1, 2, 2, 3), dtype=np.uint8)
    clips = sample_clips(frames, 4, 2)
    assert clips.shape == (2, 4, 2, 2, 3)
    assert clips[:, :, 0, 0, 0].tolist() == [[4, 5, 6, 7], [12, 13, 14, 15]]
    assert sample_clips(frames, 5, 1, stride=2)[0, :, 0, 0, 0].tolist() == [6, 8, 10, 12, 14]
    assert sample_clips(frames[:3], 5, 1)[0, :, 0, 0, 0].tolist() == [0, 1, 2, 2, 2]  # padded


# ---------------------------------------------------------------- optical flow


def test_the_installed_opencv_has_tv_l1() -> None:
    assert tvl1_available(), "kinetoscope depends on opencv-contrib-python-headless, which carries cv2.optflow"


@pytest.mark.parametrize("ext", sorted(CODECS))
@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_flow_points_the_way_the_square_moves(tmp_path, ext, name) -> None:
    frames, masks = moving_square(DIRECTIONS[name])
    path = write_video(tmp_path / f"clip.{ext}", frames, *CODECS[ext])
    flow = optical_flow(decode(path), method="dis")  # TV-L1: test_flow_tvl1.py
    assert flow.shape == (FRAMES - 1, 2, SIZE, SIZE) and flow.dtype == np.float32
    assert_points(mean_flow(flow, masks), SPEED * np.array(DIRECTIONS[name], dtype=float))


def test_flow_matches_the_exact_flow_of_synthetic_clips(tmp_path) -> None:
    from kinetoscope.model_zoo.synthetic import make_clip

    for label in range(4):  # red and blue discs going right and left at 2 px/frame
        clip = make_clip(label, seed=label, size=32, frames=11)
        frames = np.ascontiguousarray((clip.video + 128).astype(np.uint8).transpose(1, 2, 3, 0))
        path = write_video(tmp_path / f"synthetic{label}.mkv", frames, "ffv1", "bgr0")  # lossless
        decoded = decode(path)
        assert np.array_equal(decoded, frames)
        flow = optical_flow(decoded, method="dis")
        moving = clip.mask[:-1]
        truth = np.array([clip.flow[:, 0][moving].mean(), clip.flow[:, 1][moving].mean()])
        assert_points(mean_flow(flow, clip.mask), truth)
        endpoint_error = np.linalg.norm(flow - clip.flow, axis=1)[moving].mean()
        assert endpoint_error < 0.8


# ---------------------------------------------------------------- model inputs


def ramp_flow(fields: int, size: int = 4) -> np.ndarray:
    """Field t is uniformly (x, y) = (t + 1, −(t + 1)) / 16, so scaled values name their field."""
    values = (np.arange(fields, dtype=np.float32) + 1) / 16
    flow = np.zeros((fields, 2, size, size), dtype=np.float32)
    flow[:, 0], flow[:, 1] = values[:, None, None], -values[:, None, None]
    return flow


def test_stacked_flow_is_interleaved_and_centred_on_the_middle_frame() -> None:
    frames = np.zeros((13, 4, 4, 3), dtype=np.uint8)
    specs = [
        {"name": "flow", "shape": (1, 6, 4, 4), "kind": "stacked_flow", "layout": "NCHW", "value_range": (-128, 127)},
        {"name": "planar", "shape": (1, 6, 4, 4), "kind": "stacked_flow_planar", "layout": "NCHW", "value_range": (-128, 127)},
    ]
    inputs = to_inputs(frames, ramp_flow(12), specs)
    # middle frame 6, three fields centred on it: fields 5, 6, 7 (values 6, 7, 8 after ×16)
    assert inputs["flow"][:, 0, 0].tolist() == [6, -6, 7, -7, 8, -8]
    assert inputs["planar"][:, 0, 0].tolist() == [6, 7, 8, -6, -7, -8]


def test_values_follow_the_declared_range_and_layout() -> None:
    frames = np.full((9, 4, 4, 3), 255, dtype=np.uint8)
    frames[4] = 0  # the middle frame
    specs = [
        InputInfo("rgb", (1, 4, 4, 3), "image", (0.0, 1.0), "NHWC"),
        InputInfo("clip", (1, 8, 4, 4, 3), "video", (-128.0, 127.0), "NTHWC"),
        InputInfo("motion", (1, 2, 8, 4, 4), "flow_video", (-20.0, 20.0), "NCTHW"),
    ]
    inputs = to_inputs(frames, ramp_flow(8) * 16, specs, flow_scale=1.0)
    assert inputs["rgb"].shape == (4, 4, 3) and np.all(inputs["rgb"] == 0.0)
    assert inputs["clip"].shape == (8, 4, 4, 3) and inputs["clip"].dtype == np.float32
    assert inputs["clip"][:, 0, 0, 0].tolist() == [127, 127, 127, 127, -128, 127, 127, 127]
    assert inputs["motion"].shape == (2, 8, 4, 4)
    assert inputs["motion"][0, :, 0, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    clipped = to_inputs(frames, ramp_flow(8) * 16, specs[2:], flow_scale=4.0)["motion"]
    assert clipped.max() == 20.0 and clipped.min() == -20.0


def test_inputs_of_another_size_are_cropped_and_resized_with_their_flow() -> None:
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    flow = np.ones((2, 2, 8, 8), dtype=np.float32)
    specs = [InputInfo("flow", (1, 4, 4, 4), "stacked_flow", (-128.0, 127.0), "NCHW")]
    stacked = to_inputs(frames, flow, specs, flow_scale=16.0)["flow"]
    assert np.allclose(stacked, 8.0)  # 1 px/frame at 8 px is 0.5 px/frame at 4 px


def test_wrong_declarations_are_clear_errors() -> None:
    frames = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="needs clips of 11 frames"):
        to_inputs(frames, np.zeros((2, 2, 4, 4), np.float32), [InputInfo("f", (1, 20, 4, 4), "stacked_flow", (-128, 127), "NCHW")])
    with pytest.raises(ValueError, match="3 channels"):
        to_inputs(frames, None, [InputInfo("v", (1, 2, 4, 4), "image", (-128, 127), "NCHW")])


# ---------------------------------------------------------------- folders of videos


def test_two_stream_inputs_from_a_folder(dataset) -> None:
    with pytest.warns(UserWarning, match="broken.mp4"):
        inputs, labels, ids, class_names = clips_from_videos(dataset, TWO_STREAM, flow_method="dis")
    assert class_names == ["down", "left", "right", "up"]
    assert inputs["rgb"].shape == (8, 3, 32, 32) and inputs["flow"].shape == (8, 20, 32, 32)
    assert inputs["rgb"].dtype == inputs["flow"].dtype == np.float32
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert ids[:2] == ["down/a.mp4#0", "down/b.avi#0"] and ids[-1] == "up/b.avi#0"
    assert inputs["rgb"].min() >= -128 and inputs["rgb"].max() <= 127
    for row, label in enumerate(labels):
        dx, dy = DIRECTIONS[class_names[label]]
        x1, y1 = inputs["flow"][row, 0], inputs["flow"][row, 1]  # x and y of field 1
        moving = np.hypot(x1, y1) > 8  # over 0.5 px/frame at ×16
        assert moving.sum() >= 10
        mean = np.array([x1[moving].mean(), y1[moving].mean()])
        assert mean @ np.array([dx, dy]) / np.linalg.norm(mean) >= 0.9, (ids[row], mean)


def test_3d_inputs_with_several_clips_per_video(dataset) -> None:
    with pytest.warns(UserWarning, match="broken.mp4"):
        clips = clips_from_videos(dataset, VIDEO_3D, clips_per_video=2)
    assert clips.inputs["video"].shape == (16, 3, 8, 32, 32)
    assert clips.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert clips.ids[:2] == ["down/a.mp4#0", "down/a.mp4#1"]
    first, second = clips.inputs["video"][0], clips.inputs["video"][1]
    assert not np.array_equal(first, second)  # two different windows of the video


def test_a_folder_without_videos_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "readme.txt").write_text("no videos here")
    with pytest.raises(ValueError, match="no videos in"):
        clips_from_videos(tmp_path, TWO_STREAM)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        clips_from_videos(tmp_path / "missing", TWO_STREAM)


def test_only_undecodable_videos_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "bad.avi").write_bytes(b"RIFF" + b"\x00" * 64)
    with pytest.warns(UserWarning, match="bad.avi"), pytest.raises(ValueError, match="could be decoded"):
        clips_from_videos(tmp_path, VIDEO_3D)


def test_importing_the_video_module_stays_light() -> None:
    code = (
        "import sys, kinetoscope.client.video, kinetoscope.client.flow;"
        "heavy = [m for m in ('torch', 'av', 'cv2') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
