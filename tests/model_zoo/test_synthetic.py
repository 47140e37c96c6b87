"""Synthetic actions: deterministic, balanced, and with flow that is exactly the rendered motion."""

from __future__ import annotations


import numpy as np
import pytest

from kinetoscope.model_zoo.flow_ops import input_to_flow, mean_direction, stack_flow, unstack_flow
from kinetoscope.model_zoo.synthetic import (
    DEFAULT_CLASSES,
    FUSION_QUAD,
    SPEED_PAIR,
    ClassSpec,
    SyntheticActions,
    make_clip,
    two_stream_input,
)

NAMES = [spec.name for spec in DEFAULT_CLASSES]
MIDDLE = 5  # (11 − 1) // 2


def _index(name: str) -> int:
    return NAMES.index(name)


def _forward_warp(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Move each pixel of `frame [C, H, W]` by its flow `[2, H, W]`; moving pixels land on top, NaN where none lands."""
    _, height, width = frame.shape
    ys, xs = np.mgrid[0:height, 0:width]
    tx = xs + np.rint(flow[0]).astype(int)
    ty = ys + np.rint(flow[1]).astype(int)
    warped = np.full(frame.shape, np.nan)
    moving = (flow[0] != 0) | (flow[1] != 0)
    for layer in (~moving, moving):
        keep = layer & (tx >= 0) & (tx < width) & (ty >= 0) & (ty < height)
        warped[:, ty[keep], tx[keep]] = frame[:, ys[keep], xs[keep]]
    return warped


# ---------------------------------------------------------------- determinism, shapes, balance


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = make_clip(3, 42), make_clip(3, 42), make_clip(3, 43)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.video, c.video)
    ds = SyntheticActions(seed=5)
    np.testing.assert_array_equal(ds[7].flow, SyntheticActions(seed=5)[7].flow)
    assert not np.array_equal(ds[7].rgb, SyntheticActions(seed=6)[7].rgb)
    first, again = ds.batch(12, seed=3), ds.batch(12, seed=3)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first.rgb, ds.batch(12, seed=4).rgb)


def test_shapes_dtypes_and_ranges():
    ds = SyntheticActions(size=32, frames=11, flow_fields=10)
    rgb, flow, label = ds[0]
    assert (rgb.shape, rgb.dtype, flow.shape, flow.dtype) == ((3, 32, 32), np.float32, (20, 32, 32), np.float32)
    assert isinstance(label, int)
    batch = ds.batch(6)
    assert batch.rgb.shape == (6, 3, 32, 32) and batch.flow.shape == (6, 20, 32, 32)
    assert batch.label.shape == (6,) and batch.label.dtype == np.int64
    videos = ds.video_batch(4)
    assert videos.video.shape == (4, 3, 11, 32, 32) and videos.video.dtype == np.float32
    for values in (batch.rgb, batch.flow, videos.video):
        assert values.min() >= -128 and values.max() <= 127
    np.testing.assert_array_equal(np.rint(batch.rgb), batch.rgb)  # 8-bit pixels − 128
    clip = ds.clip(0)
    assert clip.flow.shape == (10, 2, 32, 32) and clip.mask.shape == (11, 32, 32)
    small = SyntheticActions(size=24, frames=8, flow_fields=3)[1]
    assert small.rgb.shape == (3, 24, 24) and small.flow.shape == (6, 24, 24)
    with pytest.raises(ValueError):
        SyntheticActions(frames=11, flow_fields=11)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_classes_are_balanced():
    ds = SyntheticActions(length=40)
    counts = np.bincount([ds[i].label for i in range(0, 40, 1)], minlength=10)
    assert counts.tolist() == [4] * 10
    labels = ds.batch(25, seed=1).label
    counts = np.bincount(labels, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 25
    assert SyntheticActions(classes=4).num_classes == 4


def test_default_classes_cover_the_required_contrasts():
    assert 8 <= len(DEFAULT_CLASSES) <= 12 and len(set(NAMES)) == len(NAMES)
    assert {spec.motion for spec in DEFAULT_CLASSES} == {"linear", "accelerate", "oscillate"}
    rr, rl, br, bl = (DEFAULT_CLASSES[_index(n)] for n in FUSION_QUAD)
    assert rr.colour == rl.colour != br.colour == bl.colour
    assert rr.direction == br.direction == (1.0, 0.0) and rl.direction == bl.direction == (-1.0, 0.0)
    assert len({(s.shape, s.speed, s.motion) for s in (rr, rl, br, bl)}) == 1
    slow, fast = (DEFAULT_CLASSES[_index(n)] for n in SPEED_PAIR)
    assert (slow.colour, slow.shape, slow.direction, slow.motion) == (fast.colour, fast.shape, fast.direction, fast.motion)
    assert fast.speed > slow.speed
    with pytest.raises(ValueError):
        ClassSpec("bad", (1, 2, 3), "disc", "linear", (1.0, 1.0), 1.0)


# ---------------------------------------------------------------- exact flow


@pytest.mark.parametrize("name", NAMES)
def test_warping_frame_t_by_its_flow_gives_frame_t_plus_1(name):
    for seed in range(3):
        clip = make_clip(_index(name), seed)
        height, width = clip.mask.shape[1:]
        ys, xs = np.mgrid[0:height, 0:width]
        for t in range(len(clip.flow)):
            frame, after = clip.video[:, t], clip.video[:, t + 1]
            warped = _forward_warp(frame, clip.flow[t])
            landed = ~np.isnan(warped[0])
            same = landed & np.all(warped == after, axis=0)
            step = clip.positions[t + 1] - clip.positions[t]
            sx, sy = xs - step[0], ys - step[1]
            came_from_frame = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
            shape = clip.mask[t + 1] & came_from_frame  # not entering through the border
            if shape.sum():
                assert same[shape].mean() >= 0.99, (name, seed, t)
            background = ~clip.mask[t] & ~clip.mask[t + 1]  # neither occluded nor disoccluded
            assert same[background].mean() >= 0.99, (name, seed, t)
            assert landed[shape | background].all()  # only disoccluded or entering pixels get nothing


def test_flow_is_zero_off_the_shape_and_rigid_on_it():
    for index in range(len(NAMES)):
        clip = make_clip(index, 11)
        steps = np.diff(clip.positions, axis=0)
        for t, field in enumerate(clip.flow):
            on = clip.mask[t]
            assert not field[:, ~on].any()
            assert (field[0, on] == steps[t, 0]).all() and (field[1, on] == steps[t, 1]).all()


@pytest.mark.parametrize("spec", [s for s in DEFAULT_CLASSES if s.motion != "oscillate"], ids=lambda s: s.name)
def test_mean_flow_points_in_the_declared_direction_at_the_declared_speed(spec):
    ds = SyntheticActions(classes=[spec], length=20)
    clips = [ds.clip(i) for i in range(20)]
    mean = mean_direction(np.concatenate([c.flow for c in clips]))
    cosine = mean @ np.asarray(spec.direction) / np.linalg.norm(mean)
    assert cosine >= 0.99
    travelled = np.mean([np.linalg.norm(c.positions[-1] - c.positions[0]) / (len(c.positions) - 1) for c in clips])
    assert travelled == pytest.approx(spec.speed, rel=0.05)


def test_acceleration_never_slows_down():
    spec = DEFAULT_CLASSES[_index("cyan_disc_down_accelerate")]
    speeds = np.linalg.norm(np.diff(make_clip(_index(spec.name), 0).positions, axis=0), axis=1)
    assert (np.diff(speeds) >= 0).all() and speeds[-1] > speeds[0]


def test_oscillation_goes_back_and_forth_along_its_axis():
    name = "pink_square_horizontal_oscillate"
    spec = DEFAULT_CLASSES[_index(name)]
    flows = np.concatenate([make_clip(_index(name), seed).flow for seed in range(8)])
    dx, dy = flows[:, 0], flows[:, 1]
    assert not dy.any()
    assert set(np.unique(dx[dx != 0])) == {-spec.speed, spec.speed}


def test_slow_and_fast_differ_by_the_declared_speed_ratio():
    slow, fast = (DEFAULT_CLASSES[_index(n)] for n in SPEED_PAIR)
    speeds = []
    for name in SPEED_PAIR:
        flows = np.concatenate([make_clip(_index(name), seed).flow for seed in range(10)])
        magnitude = np.hypot(flows[:, 0], flows[:, 1])
        speeds.append(magnitude[magnitude > 0].mean())
    assert speeds[1] / speeds[0] == pytest.approx(fast.speed / slow.speed, rel=0.02)


def test_two_stream_flow_is_interleaved_and_scaled():
    ds = SyntheticActions(classes=[DEFAULT_CLASSES[_index("red_disc_right")]], flow_scale=16.0)
    sample, clip = ds[0], ds.clip(0)
    assert (sample.flow[0::2].max(), np.abs(sample.flow[1::2]).max()) == (32.0, 0.0)  # x first, 2 px/frame × 16
    np.testing.assert_array_equal(unstack_flow(input_to_flow(sample.flow, 16.0)), clip.flow)
    np.testing.assert_array_equal(sample.rgb, clip.video[:, MIDDLE])
    np.testing.assert_array_equal(unstack_flow(stack_flow(clip.flow)), clip.flow)
    up = SyntheticActions(classes=[DEFAULT_CLASSES[_index("green_square_up_fast")]])[0].flow
    assert np.abs(up[0::2]).max() == 0 and up[1::2].min() == -48.0  # up is negative y


# ---------------------------------------------------------------- fusion pairs


def test_same_colour_pairs_share_rgb_frames_but_not_flow():
    """With one seed the middle frame is identical, so the RGB distributions are identical."""
    right, left = _index("red_disc_right"), _index("red_disc_left")
    for seed in range(10):
        a, b = make_clip(right, seed), make_clip(left, seed)
        np.testing.assert_array_equal(a.video[:, MIDDLE], b.video[:, MIDDLE])
        assert mean_direction(a.flow)[0] > 0 > mean_direction(b.flow)[0]


def test_same_motion_pairs_share_flow_but_not_colour():
    """With one seed the flow is identical, so the flow distributions are identical."""
    red, blue = _index("red_disc_right"), _index("blue_disc_right")
    for seed in range(10):
        a, b = make_clip(red, seed), make_clip(blue, seed)
        np.testing.assert_array_equal(two_stream_input(a, 10).flow, two_stream_input(b, 10).flow)
        on = a.mask[MIDDLE]
        red_shape, blue_shape = a.video[:, MIDDLE][:, on].mean(axis=1), b.video[:, MIDDLE][:, on].mean(axis=1)
        assert red_shape[0] > red_shape[2] + 100 and blue_shape[2] > blue_shape[0] + 100


def _rgb_features(batch_rgb: np.ndarray) -> np.ndarray:
    """Per-sample colour statistics: channel means of the frame and of its 5% most saturated pixels, channel spreads."""
    flat = batch_rgb.reshape(*batch_rgb.shape[:2], -1)
    saturation = flat.max(axis=1) - flat.min(axis=1)
    vivid = np.argsort(saturation, axis=1)[:, -flat.shape[2] // 20 :]
    vivid_mean = np.take_along_axis(flat, vivid[:, None, :], axis=2).mean(axis=2)
    return np.concatenate([vivid_mean, flat.mean(axis=2), flat.std(axis=2)], axis=1)


def _z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample z score per feature."""
    return np.abs(a.mean(0) - b.mean(0)) / np.sqrt(a.var(0) / len(a) + b.var(0) / len(b) + 1e-12)


def test_fusion_quad_needs_both_streams_on_independent_samples():
    quad = [DEFAULT_CLASSES[_index(n)] for n in FUSION_QUAD]
    batch = SyntheticActions(classes=quad, seed=9).batch(320)
    rgb = _rgb_features(batch.rgb)
    flow_x = batch.flow[:, 0::2].sum(axis=(1, 2, 3)) / np.maximum((batch.flow[:, 0::2] != 0).sum(axis=(1, 2, 3)), 1)
    area = (batch.flow[:, 0::2] != 0).sum(axis=(1, 2, 3)).astype(float)
    by = {name: batch.label == k for k, name in enumerate(FUSION_QUAD)}
    # same colour, opposite motion: colour statistics agree, flow does not
    assert _z(rgb[by["red_disc_right"]], rgb[by["red_disc_left"]]).max() < 4
    assert (flow_x[by["red_disc_right"]] > 0).all() and (flow_x[by["red_disc_left"]] < 0).all()
    # same motion, other colour: flow statistics agree, colour does not
    for direction in ("right", "left"):
        red, blue = by[f"red_disc_{direction}"], by[f"blue_disc_{direction}"]
        assert _z(flow_x[red, None], flow_x[blue, None]).max() < 4 and _z(area[red, None], area[blue, None]).max() < 4
        assert _z(rgb[red], rgb[blue])[[0, 2]].min() > 4
