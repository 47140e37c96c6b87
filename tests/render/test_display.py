"""Display scaling: min-max over the whole sequence, flow as RGB = (horizontal, vertical, magnitude)."""

from __future__ import annotations

import numpy as np
import pytest

from kinetoscope.client.render.display import display_frames, flow_fields, flow_to_rgb, minmax_to_uint8
from kinetoscope.client.render.result import ResultError, infer_layout, kind_from_shape, sample_layout


def test_minmax_maps_min_to_0_and_max_to_255() -> None:
    values = np.array([-128.0, 0.0, 127.0])
    assert minmax_to_uint8(values).tolist() == [0, 128, 255]


def test_video_is_scaled_over_the_whole_sequence_not_per_frame() -> None:
    video = np.zeros((3, 2, 4, 4))
    video[:, 0] = np.linspace(0, 1, 16).reshape(4, 4)  # a faint first frame
    video[:, 1] = np.linspace(0, 10, 16).reshape(4, 4)  # a bright second frame
    frames = display_frames(video, "video")
    assert frames.shape == (2, 4, 4, 3) and frames.dtype == np.uint8
    assert frames[0].max() == 26  # 1/10 of the range, not 255 as per-frame scaling would give
    assert frames[1].max() == 255 and frames.min() == 0


def test_image_keeps_colour_by_sharing_one_range_across_channels() -> None:
    image = np.zeros((3, 2, 2))
    image[0] = 100.0  # red plane high
    image[2] = -100.0  # blue plane low
    frame = display_frames(image, "image")[0]
    red, green, blue = frame[0, 0].tolist()
    assert (red, blue) == (255, 0) and abs(green - 127.5) <= 1  # zero sits mid-range in every channel


def test_rightward_flow_is_red_with_mid_green_and_bright_blue() -> None:
    fields = np.zeros((3, 2, 8, 8))
    fields[:, 0, 2:6, 2:6] = 5.0  # a square moving right, nothing vertical
    frames = flow_to_rgb(fields)
    inside, outside = frames[1, 4, 4], frames[1, 0, 0]
    assert inside.tolist() == [255, 128, 255]  # R high (rightward), G mid (no vertical), B high (magnitude)
    assert outside.tolist() == [0, 128, 0]


def test_downward_and_leftward_flow_follow_the_channels() -> None:
    fields = np.zeros((1, 2, 4, 4))
    fields[0, 0, :, :2] = -3.0  # left half moves left
    fields[0, 1, :, 2:] = 3.0  # right half moves down
    frame = flow_to_rgb(fields)[0]
    assert frame[0, 0].tolist() == [0, 0, 255]  # leftward: lowest R, no vertical: lowest G here, full magnitude
    assert frame[0, 3].tolist() == [255, 255, 255]  # no horizontal (max of R's range), downward (high G)


def test_uniform_flow_field_reads_as_its_direction() -> None:
    fields = np.zeros((2, 2, 4, 4))
    fields[:, 0] = 2.0  # everything moves right at the same speed: no range to stretch
    frame = flow_to_rgb(fields)[0, 0, 0]
    assert frame.tolist() == [255, 128, 255]


def test_flow_channels_are_scaled_over_the_whole_sequence() -> None:
    fields = np.zeros((2, 2, 2, 2))
    fields[0, 0, 0, 0] = 1.0
    fields[1, 0, 0, 0] = 4.0
    red = flow_to_rgb(fields)[..., 0]
    assert red[0, 0, 0] == 64 and red[1, 0, 0] == 255


def test_stacked_flow_is_deinterleaved_x1_y1_x2_y2() -> None:
    sample = np.stack([np.full((2, 2), v) for v in (10, 11, 20, 21, 30, 31)])  # x1 y1 x2 y2 x3 y3
    fields = flow_fields(sample, "stacked_flow")
    assert fields.shape == (3, 2, 2, 2)
    assert fields[:, 0, 0, 0].tolist() == [10, 20, 30]
    assert fields[:, 1, 0, 0].tolist() == [11, 21, 31]


def test_planar_stacked_flow_is_x1_to_xL_then_y1_to_yL() -> None:
    sample = np.stack([np.full((2, 2), v) for v in (10, 20, 30, 11, 21, 31)])
    fields = flow_fields(sample, "stacked_flow_planar")
    assert fields[:, 0, 0, 0].tolist() == [10, 20, 30]
    assert fields[:, 1, 0, 0].tolist() == [11, 21, 31]


def test_flow_video_gives_one_frame_per_time_step() -> None:
    sample = np.random.default_rng(0).normal(size=(2, 5, 6, 6))
    assert display_frames(sample, "flow_video").shape == (5, 6, 6, 3)


def test_stacked_flow_gives_L_frames() -> None:
    sample = np.random.default_rng(0).normal(size=(10, 6, 6))
    assert display_frames(sample, "stacked_flow").shape == (5, 6, 6, 3)


def test_channel_last_layouts_match_channel_first() -> None:
    rng = np.random.default_rng(1)
    video = rng.normal(size=(3, 4, 5, 6))
    flow = rng.normal(size=(8, 5, 6))
    np.testing.assert_array_equal(
        display_frames(np.moveaxis(video, 0, -1), "video", "THWC"), display_frames(video, "video", "CTHW")
    )
    np.testing.assert_array_equal(
        display_frames(np.moveaxis(flow, 0, -1), "stacked_flow", "HWC"), display_frames(flow, "stacked_flow", "CHW")
    )


def test_layouts_and_kinds_are_inferred_from_shapes() -> None:
    assert sample_layout("NCTHW") == "CTHW" and sample_layout("NCDHW") == "CTHW" and sample_layout("NHWC") == "HWC"
    assert infer_layout((3, 224, 224)) == "CHW" and infer_layout((224, 224, 3)) == "HWC"
    assert kind_from_shape((3, 32, 32), "CHW") == "image"
    assert kind_from_shape((20, 32, 32), "CHW") == "stacked_flow"
    assert kind_from_shape((3, 8, 32, 32), "CTHW") == "video"
    assert kind_from_shape((2, 8, 32, 32), "CTHW") == "flow_video"
    with pytest.raises(ResultError, match="input_kinds"):
        kind_from_shape((5, 32, 32), "CHW")


def test_bad_flow_shape_says_what_is_wrong() -> None:
    with pytest.raises(ResultError, match="even channel count"):
        flow_fields(np.zeros((5, 4, 4)), "stacked_flow")
