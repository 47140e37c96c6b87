"""`kinetoscope.motion`: the optimized motion's magnitude, direction and coherence per γ, and its consistency.

Synthetic fields with a known motion pin the definitions to exact numbers; a short
maximization of the zoo's trained two-stream model checks the paper's observation
(section 4.2.1) on real optimized flow: a rightward class keeps its direction across
γ ∈ {0, 10} while its motion slows down.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kinetoscope.motion import MotionError, flow_fields, motion_across_settings

import kinetoscope.model_zoo as zoo

MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
RIGHTWARD = (0, 2)  # red_disc_right, blue_disc_right
GAMMAS = (0.0, 10.0)


def _uniform(dx: float, dy: float, fields: int = 3, size: int = 4) -> np.ndarray:
    """Fields [F, 2, H, W] that all move by (dx, dy) everywhere."""
    out = np.zeros((fields, 2, size, size))
    out[:, 0], out[:, 1] = dx, dy
    return out


def test_uniform_rightward_field_has_magnitude_2_direction_0_coherence_1() -> None:
    motion = motion_across_settings(_uniform(2.0, 0.0)[None])
    assert motion.magnitude.tolist() == [2.0]
    assert motion.direction.tolist() == [0.0]
    assert motion.coherence.tolist() == [1.0]
    assert motion.consistency == 1.0
    assert math.isnan(motion.speed_ratio)  # one setting: nothing to compare


def test_direction_is_in_image_axes_and_magnitude_is_rms() -> None:
    down = motion_across_settings(_uniform(0.0, 3.0)[None])
    assert down.direction[0] == pytest.approx(math.pi / 2)
    diagonal = motion_across_settings(_uniform(-3.0, -4.0)[None])
    assert diagonal.magnitude[0] == pytest.approx(5.0)
    assert diagonal.direction[0] == pytest.approx(math.atan2(-4.0, -3.0))
    half = _uniform(2.0, 0.0, fields=2)
    half[1] = 0.0  # one field still: RMS over fields is 2/√2, the net direction unchanged
    motion = motion_across_settings(half[None])
    assert motion.magnitude[0] == pytest.approx(math.sqrt(2.0))
    assert motion.direction[0] == 0.0 and motion.coherence[0] == 1.0


def test_opposite_directions_at_two_settings_have_consistency_0() -> None:
    motion = motion_across_settings(np.stack([_uniform(2.0, 0.0), _uniform(-1.0, 0.0)]), GAMMAS)
    assert motion.consistency == pytest.approx(0.0, abs=1e-12)
    assert motion.direction.tolist() == pytest.approx([0.0, math.pi])
    assert motion.speed_ratio == 0.5


def test_coherence_weights_consistency() -> None:
    """A setting whose motion half cancels counts half: (1·(1,0) + ½·(0,1)) / 1.5."""
    mixed = _uniform(0.0, 1.0, fields=4)
    mixed[:2] *= -1.0
    mixed[0] = _uniform(0.0, 1.0, fields=1)[0]  # three fields down, one up: coherence ½
    motion = motion_across_settings(np.stack([_uniform(1.0, 0.0, fields=4), mixed]))
    assert motion.coherence.tolist() == [1.0, 0.5]
    assert motion.consistency == pytest.approx(math.hypot(1.0, 0.5) / 1.5)


def test_motion_that_cancels_has_no_direction_and_no_weight() -> None:
    still = np.concatenate([_uniform(1.0, 0.0, fields=1), _uniform(-1.0, 0.0, fields=1)])
    motion = motion_across_settings(np.stack([still, _uniform(0.0, -2.0, fields=2)]), (10.0, 0.0))
    assert motion.coherence.tolist() == [0.0, 1.0]
    assert math.isnan(motion.direction[0])
    assert motion.consistency == 1.0  # only the moving setting has a direction
    assert motion.speed_ratio == 0.5  # largest γ listed first: 1 / 2
    zero = motion_across_settings(np.zeros((2, 1, 2, 3, 3)), GAMMAS)
    assert math.isnan(zero.consistency) and math.isnan(zero.speed_ratio)


def test_layouts_give_the_same_motion() -> None:
    rng = np.random.default_rng(0)
    fields = rng.normal(size=(2, 5, 2, 6, 7)) + np.array([1.5, -0.5])[:, None, None]  # [S, F, 2, H, W]
    interleaved = fields.reshape(2, 10, 6, 7)
    planar = np.concatenate([fields[:, :, 0], fields[:, :, 1]], axis=1)
    video = np.swapaxes(fields, 1, 2)  # [S, 2, T, H, W]
    readings = {
        "stacked_flow CHW": flow_fields(interleaved, "stacked_flow", "CHW"),
        "stacked_flow HWC": flow_fields(np.moveaxis(interleaved, 1, -1), "stacked_flow", "HWC"),
        "stacked_flow_planar CHW": flow_fields(planar, "stacked_flow_planar", "CHW"),
        "flow_video CTHW": flow_fields(video, "flow_video", "CTHW"),
        "flow_video THWC": flow_fields(np.moveaxis(video, 1, -1), "flow_video", "THWC"),
    }
    expected = motion_across_settings(fields, GAMMAS)
    for name, read in readings.items():
        np.testing.assert_array_equal(read, fields, err_msg=name)
        got = motion_across_settings(read, GAMMAS)
        for key in ("magnitude", "direction", "coherence", "consistency", "speed_ratio"):  # equal up to summation order
            np.testing.assert_allclose(getattr(got, key), getattr(expected, key), rtol=1e-12, err_msg=f"{name} {key}")
    assert expected.direction[0] == pytest.approx(math.atan2(-0.5, 1.5), abs=0.1)


def test_bad_shapes_say_what_is_wrong() -> None:
    with pytest.raises(MotionError, match="even channel count"):
        flow_fields(np.zeros((5, 4, 4)), "stacked_flow")
    with pytest.raises(MotionError, match="must be \\[2,T,H,W\\]"):
        flow_fields(np.zeros((3, 2, 4, 4)), "flow_video")
    with pytest.raises(MotionError, match="not a flow kind"):
        flow_fields(np.zeros((3, 4, 4)), "image")
    with pytest.raises(MotionError, match="order the axes CHW"):
        flow_fields(np.zeros((4, 4, 4)), "stacked_flow", "CTHW")
    with pytest.raises(MotionError, match="settings, fields, 2, H, W"):
        motion_across_settings(np.zeros((2, 3, 4, 4)))
    with pytest.raises(MotionError, match="2 γ given for 3 settings"):
        motion_across_settings(np.zeros((3, 1, 2, 4, 4)), GAMMAS)


def test_client_and_server_share_it_without_torch() -> None:
    code = ("import sys, kinetoscope.motion, kinetoscope.server.engine.analysis as a, kinetoscope.client.render.display;"
            "assert a.motion_across_settings is kinetoscope.motion.motion_across_settings;"
            "bad = sorted(m for m in ('torch', 'grpc', 'kinetoscope.server.engine.render') if m in sys.modules);"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_rightward_class_keeps_its_direction_and_slows_down_at_larger_gamma() -> None:
    """Logits of the two rightward classes, 128 steps, seed 0, γ ∈ {0, 10} (about 2 s on two cores).

    Seeds 0–3 gave consistency 0.95–0.997 (chance, for two directions drawn at random with
    these coherences, about 0.65–0.72), speed ratio 0.48–0.56, and at γ = 10 directions
    17–33° above rightward: the whole field also drifts up a little (γ = 0: 34–60°).
    """
    from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize  # noqa: PLC0415
    from kinetoscope.server.importer import import_model  # noqa: PLC0415

    model = import_model(MODEL, inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])
    run = maximize(model, [Logit("logits", c) for c in RIGHTWARD], [Setting(kappa=1.0, gamma=g) for g in GAMMAS],
                   MaximizeConfig(iterations=128, seed=0))
    for c, row in zip(RIGHTWARD, run.results):
        fields = flow_fields(np.stack([unit.inputs["flow"] for unit in row]), "stacked_flow", "CHW")
        motion = motion_across_settings(fields, GAMMAS)
        summary = (c, motion.magnitude.round(3).tolist(), np.degrees(motion.direction).round(1).tolist(),
                   motion.coherence.round(3).tolist(), round(motion.consistency, 3), round(motion.speed_ratio, 3))
        assert motion.consistency >= 0.9, summary
        assert np.all(np.cos(motion.direction) > 0), summary  # every γ moves rightward
        assert math.cos(motion.direction[-1]) >= 0.7, summary  # within 45° of rightward at γ = 10
        assert motion.speed_ratio < 0.7, summary
