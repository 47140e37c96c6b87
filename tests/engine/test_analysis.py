"""Per-unit analysis on the zoo's trained synthetic models, whose classes (colour, shape, motion, speed) are known.

Each test measures what the classes say must hold: class logits are selective for their
own class, single-stream layers rely only on their stream, replaying the speed pair's
clips faster or slower moves their logits the way the classes' speeds say, the
permutation test's false positives match its α, and checkpoint evolution equals a hand
computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import kinetoscope.model_zoo as zoo
from kinetoscope.model_zoo.synthetic import SPEED_PAIR, SyntheticActions, identical_classes
from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize
from kinetoscope.server.engine.analysis.evolution import cosine_change, evolution, temporal_variation
from kinetoscope.server.engine.analysis.reliance import stream_reliance
from kinetoscope.server.engine.analysis.responses import layer_responses, response_function
from kinetoscope.server.engine.analysis.selectivity import (
    CLASS_SPECIFIC, PermutationConfig, lifetime_sparseness, permutation_p_values, selectivity, selectivity_index)
from kinetoscope.server.engine.analysis.speed import SPEEDS, resample, synthetic_replay, synthetic_speed_tuning
from kinetoscope.server.engine.recorder import Recorder
from kinetoscope.server.engine.config import RecordConfig
from kinetoscope.server.importer import InputSpec, import_model

TRAINED = Path(zoo.__file__).parent / "trained"
TWO_STREAM_INPUTS = ["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"]
CLASSES = 10
PER_CLASS = 10
DATA = SyntheticActions()
SLOW, FAST = (DATA.class_index(name) for name in SPEED_PAIR)


@pytest.fixture(scope="module")
def two_stream():
    return import_model(TRAINED / "two_stream_small.onnx", inputs=TWO_STREAM_INPUTS)


@pytest.fixture(scope="module")
def video3d():
    return import_model(TRAINED / "video3d_small.onnx")


@pytest.fixture(scope="module")
def clips():
    batch = DATA.batch(CLASSES * PER_CLASS, seed=11)
    return {"rgb": batch.rgb, "flow": batch.flow}, batch.label


# ---------------------------------------------------------------- responses


def test_responses_equal_the_recorders_per_class_maxima(two_stream, clips) -> None:
    inputs, labels = clips
    responses = layer_responses(two_stream, inputs, ["conv_fusion", "logits"], batch_size=16)
    recorded = Recorder(two_stream, ["conv_fusion", "logits"], RecordConfig(classes=CLASSES))
    recorded.add(inputs, labels)
    stats = recorded.finish()
    for layer in ("conv_fusion", "logits"):
        assert responses[layer].shape == (len(labels), two_stream.layer(layer).channels)
        per_class = np.stack([responses[layer][labels == c].max(0) for c in range(CLASSES)])
        np.testing.assert_allclose(per_class, stats[layer].per_class_max.T, rtol=1e-5, atol=1e-5)


def test_responses_refuse_clips_of_the_wrong_shape(two_stream, clips) -> None:
    inputs, _ = clips
    with pytest.raises(ValueError, match="expected \\[N, 20, 32, 32\\]"):
        layer_responses(two_stream, {"rgb": inputs["rgb"], "flow": inputs["flow"][:, :10]}, ["logits"])


# ---------------------------------------------------------------- selectivity


@pytest.mark.parametrize("name, inputs", [("two_stream_small.onnx", TWO_STREAM_INPUTS), ("video3d_small.onnx", None)])
def test_every_logit_is_specific_to_its_own_class(name, inputs) -> None:
    model = import_model(TRAINED / name, inputs=inputs)
    if inputs is None:
        batch = DATA.video_batch(CLASSES * PER_CLASS, seed=11)
        feeds, labels = {"video": batch.video}, batch.label
    else:
        batch = DATA.batch(CLASSES * PER_CLASS, seed=11)
        feeds, labels = {"rgb": batch.rgb, "flow": batch.flow}, batch.label
    result = selectivity(layer_responses(model, feeds, ["logits"])["logits"], labels, CLASSES)
    np.testing.assert_array_equal(result.top_class, np.arange(CLASSES))
    assert result.labels == [CLASS_SPECIFIC] * CLASSES
    assert np.all(result.p_value <= 1 / 1000), result.p_value
    assert np.all(result.index > 0.4), result.index.round(2)


def test_selectivity_numbers_match_a_hand_computation() -> None:
    # unit 0 answers class 1 only; unit 1 is negative (a logit) and must be shifted by −(−2)
    responses = np.array([[0.0, -2.0], [0.0, -1.0], [4.0, 0.0], [2.0, 2.0], [0.0, -2.0], [0.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    result = selectivity(responses, labels, 3, config=PermutationConfig(permutations=200, alpha=0.05))
    # unit 0: class means 0, 3, 0 → (3 − 0)/(3 + 0) = 1; unit 1 shifted: 0.5, 3, 1 → (3 − 0.75)/(3 + 0.75) = 0.6
    np.testing.assert_allclose(result.index, [1.0, 0.6])
    np.testing.assert_allclose(result.class_mean[:, 1], [-1.5, 1.0, -1.0])
    np.testing.assert_allclose(result.class_max[:, 0], [0.0, 4.0, 0.0])
    # Rolls–Tovee on unit 0: mean 1, mean square 20/6 → A = 0.3, S = 0.7 / (5/6) = 0.84
    np.testing.assert_allclose(lifetime_sparseness(np.array([[0.0], [0.0], [4.0], [2.0], [0.0], [0.0]])), [0.84])
    np.testing.assert_array_equal(result.top_classes[:, 0], [1, 1])
    np.testing.assert_allclose(selectivity_index(np.zeros((3, 1))), [0.0])


def test_permutation_false_positives_on_random_responses_match_alpha() -> None:
    rng = np.random.default_rng(0)
    units, alpha = 2000, 0.01
    responses = rng.gamma(2.0, size=(50, units))
    labels = rng.permutation(np.arange(50) % 5)
    p = permutation_p_values(responses, labels, 5, PermutationConfig(alpha=alpha))
    rate = np.mean(p <= alpha)
    tolerance = 4 * np.sqrt(alpha * (1 - alpha) / units)  # 4 binomial standard deviations: 0.0089
    assert abs(rate - alpha) <= tolerance, rate
    assert np.all((p > 0) & (p <= 1))


def _shuffled_weights(path: Path, out: Path, seed: int) -> Path:
    """The same graph with every weight tensor's values permuted: an untrained network of the same scale."""
    proto = onnx.load(path)
    rng = np.random.default_rng(seed)
    for init in proto.graph.initializer:
        array = onnx.numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 1:
            init.CopyFrom(onnx.numpy_helper.from_array(rng.permutation(array.reshape(-1)).reshape(array.shape), init.name))
    onnx.save(proto, out)
    return out


def test_random_weight_model_is_class_specific_at_alpha_under_shuffled_labels(tmp_path, clips) -> None:
    """With labels independent of the clips, the class-specific fraction is the test's false-positive rate.

    The units of one network see the same clips and are correlated, so the rate is pooled
    over 40 label draws (5520 unit tests). With the true labels a random network is far
    from distributed: the classes differ in colour, which random filters pick up.
    """
    model = import_model(_shuffled_weights(TRAINED / "two_stream_small.onnx", tmp_path / "random.onnx", 0),
                         inputs=TWO_STREAM_INPUTS)
    inputs, labels = clips
    layers = ["rgb/conv3", "flow/conv3", "conv_fusion", "logits"]
    measured = layer_responses(model, inputs, layers)
    responses = np.concatenate([measured[layer] for layer in layers], axis=1)
    config = PermutationConfig(alpha=0.01, permutations=200)
    rates = [np.mean(permutation_p_values(responses, np.random.default_rng(seed).permutation(labels), CLASSES, config)
                     <= config.alpha) for seed in range(40)]
    assert 0.003 <= np.mean(rates) <= 0.02, np.mean(rates)
    true_rate = np.mean(permutation_p_values(responses, labels, CLASSES, config) <= config.alpha)
    assert true_rate > 0.2, true_rate


def _untrained(kind: str, path: Path) -> Path:
    """The zoo model as its training run starts (seed 0, before the first step): an epoch-0 checkpoint."""
    import torch  # noqa: PLC0415

    from kinetoscope.model_zoo.train import MODEL_KINDS, export_onnx  # noqa: PLC0415

    torch.manual_seed(0)
    return export_onnx(MODEL_KINDS[kind].build(DATA).eval(), MODEL_KINDS[kind], DATA, path)


@pytest.mark.slow  # renders 2100 clips: about 30 s on two loaded cores
def test_untrained_model_is_class_specific_at_alpha_on_classes_that_render_alike(tmp_path) -> None:
    """Real clips whose ten classes share every statistic (colour, shape, motion): the labels carry no information.

    Units of one network on one set of clips are correlated (a chance difference between
    classes flags many at once), so the rate is pooled over 40 independent data sets, one
    per default class's appearance and seed, and its tolerance is taken both ways: the
    binomial one for 5520 independent tests and three standard errors of the per-set rates.
    """
    model = import_model(_untrained("two_stream_small", tmp_path / "untrained.onnx"), inputs=TWO_STREAM_INPUTS)
    layers = ["rgb/conv3", "flow/conv3", "conv_fusion", "logits"]
    config = PermutationConfig(alpha=0.01, permutations=200)
    rates = []
    for k, spec in enumerate(list(DATA.classes) * 4):
        batch = SyntheticActions(classes=identical_classes(spec, CLASSES)).batch(5 * CLASSES, seed=k)
        measured = layer_responses(model, {"rgb": batch.rgb, "flow": batch.flow}, layers)
        responses = np.concatenate([measured[layer] for layer in layers], axis=1)
        rates.append(np.mean(permutation_p_values(responses, batch.label, CLASSES, config) <= config.alpha))
    tests = len(rates) * responses.shape[1]
    rate, spread = np.mean(rates), np.std(rates, ddof=1) / np.sqrt(len(rates))
    assert tests == 5520
    assert abs(rate - config.alpha) <= 4 * np.sqrt(config.alpha * (1 - config.alpha) / tests), rate  # 0.0054
    assert abs(rate - config.alpha) <= 3 * spread, (rate, spread)
    # the same untrained network on the default classes, with their true labels: colour and motion differ by class,
    # and random filters respond to both, so most units are (truly) class-specific
    batch = DATA.batch(10 * CLASSES, seed=11)
    measured = layer_responses(model, {"rgb": batch.rgb, "flow": batch.flow}, layers)
    responses = np.concatenate([measured[layer] for layer in layers], axis=1)
    assert np.mean(permutation_p_values(responses, batch.label, CLASSES, config) <= config.alpha) > 0.5  # measured 0.78


# ---------------------------------------------------------------- reliance


def test_single_stream_layers_rely_only_on_their_stream(two_stream, clips) -> None:
    inputs, _ = clips
    by_stream = {layer.name: layer.inputs for layer in two_stream.catalog}
    motion = next(name for name, fed in by_stream.items() if fed == ("flow",) and name.endswith("conv3"))
    appearance = next(name for name, fed in by_stream.items() if fed == ("rgb",) and name.endswith("conv3"))
    fusion = next(name for name, fed in by_stream.items() if set(fed) == {"rgb", "flow"} and name == "conv_fusion")
    result = stream_reliance(response_function(two_stream, [motion, appearance, fusion]), inputs)

    assert np.all(result[motion].reliance["rgb"] == 0.0) and np.all(result[motion].shares["appearance"] == 0.0)
    np.testing.assert_allclose(result[motion].reliance["flow"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(result[motion].shares["motion"], 1.0, rtol=1e-9)
    assert set(result[motion].labels) == {"motion"}
    assert np.all(result[appearance].reliance["flow"] == 0.0) and np.all(result[appearance].shares["motion"] == 0.0)
    np.testing.assert_allclose(result[appearance].reliance["rgb"], 1.0, rtol=1e-9)
    assert set(result[appearance].labels) == {"appearance"}

    # fusion units use both streams: every unit loses part of its drive without either
    fused = result[fusion]
    assert np.all(fused.reliance["rgb"] > 0.05) and np.all(fused.reliance["flow"] > 0.05)
    shares = np.stack([fused.shares[k] for k in ("appearance", "motion", "joint")])
    np.testing.assert_allclose(shares.sum(0), 1.0)
    assert np.mean(fused.shares["joint"]) > 0.05


# ---------------------------------------------------------------- speed


def test_resample_replays_each_input_kind() -> None:
    video = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1, 1) * np.ones((1, 2, 5, 1, 1), np.float32)
    spec = InputSpec("video", (1, 2, 5, 1, 1), "video", (-128.0, 127.0), "NCTHW")
    # speed 2 about the middle frame 2: τ = 2 + 2(k − 2) = −2, 0, 2, 4, 6 → clamped 0, 0, 2, 4, 4
    np.testing.assert_allclose(resample(video, spec, 2.0)[0, 0, :, 0, 0], [0, 0, 2, 4, 4])
    # speed ½: τ = 1, 1.5, 2, 2.5, 3
    np.testing.assert_allclose(resample(video, spec, 0.5)[0, 1, :, 0, 0], [1, 1.5, 2, 2.5, 3])

    # three interleaved flow fields (x, y) = (10k, −10k); speed 2 doubles the displacement, clipped to the range
    fields = np.array([[10.0 * k, -10.0 * k] for k in range(3)], np.float32).reshape(1, 6, 1, 1)
    flow = InputSpec("flow", (1, 6, 1, 1), "stacked_flow", (-25.0, 25.0), "NCHW")
    np.testing.assert_allclose(resample(fields, flow, 2.0)[0, :, 0, 0], [0, 0, 20, -20, 25, -25])
    planar = InputSpec("flow", (1, 6, 1, 1), "stacked_flow_planar", (-128.0, 127.0), "NCHW")
    stacked = np.array([0, 10, 20, 0, -10, -20], np.float32).reshape(1, 6, 1, 1)  # x1 x2 x3 y1 y2 y3
    np.testing.assert_allclose(resample(stacked, planar, 0.5)[0, :, 0, 0], [2.5, 5, 7.5, -2.5, -5, -7.5])

    image = InputSpec("rgb", (1, 3, 1, 1), "image", (-128.0, 127.0), "NCHW")
    np.testing.assert_array_equal(resample(np.ones((1, 3, 1, 1)), image, 4.0), 1.0)
    with pytest.raises(ValueError, match="positive"):
        resample(video, spec, 0.0)


def test_synthetic_replay_scales_the_exact_flow() -> None:
    slow = [synthetic_replay(DATA, [FAST], speed) for speed in (0.25, 1.0)]
    # the same scene (background, shape) at both speeds; the fast class moves 3 px/frame up, ×16 in the input
    np.testing.assert_array_equal(slow[0].video[0, :, 0, :4, :4], slow[1].video[0, :, 0, :4, :4])
    moving = slow[1].flow[0, 1::2][slow[1].flow[0, 1::2] != 0]
    np.testing.assert_allclose(moving, -3 * 16)
    with pytest.raises(ValueError, match="only linear motion"):
        synthetic_replay(DATA, [DATA.class_index("pink_square_horizontal_oscillate")], 2.0)


@pytest.mark.parametrize("name, inputs", [("two_stream_small.onnx", TWO_STREAM_INPUTS), ("video3d_small.onnx", None)])
def test_replay_speed_moves_the_speed_pair_logits(name, inputs) -> None:
    """Green squares going up at 1 (slow) and 3 (fast) px/frame differ only in speed.

    Slowing the fast class's clips to ¼ (0.75 px/frame) makes them slow-class clips to the
    network; speeding the slow class's up 4× (4 px/frame) makes them fast-class clips.
    """
    model = import_model(TRAINED / name, inputs=inputs)
    function = response_function(model, ["logits"])
    fast = synthetic_speed_tuning(function, DATA, [FAST] * PER_CLASS)["logits"]
    slow = synthetic_speed_tuning(function, DATA, [SLOW] * PER_CLASS)["logits"]
    quarter, one, four = SPEEDS.index(0.25), SPEEDS.index(1.0), SPEEDS.index(4.0)

    assert fast.curve[one, FAST] > fast.curve[quarter, FAST] + 3, fast.curve[:, FAST]
    assert fast.curve[quarter, SLOW] > fast.curve[one, SLOW] + 3, fast.curve[:, SLOW]
    assert fast.curve[quarter, SLOW] > fast.curve[quarter, FAST]
    assert fast.preferred[FAST] >= 1.0

    assert slow.curve[four, FAST] > slow.curve[one, FAST] + 3, slow.curve[:, FAST]
    assert slow.curve[four, FAST] > slow.curve[four, SLOW]
    assert slow.preferred[SLOW] <= 1.0
    # both speed-pair logits are speed-selective, not speed-invariant
    assert slow.invariance[SLOW] < 0.5 and fast.invariance[FAST] < 0.5


# ---------------------------------------------------------------- evolution


def test_evolution_numbers_match_a_hand_computation() -> None:
    flow = InputSpec("flow", (1, 4, 1, 1), "stacked_flow", (-128.0, 127.0), "NCHW")
    image = InputSpec("rgb", (1, 2, 1, 1), "image", (-128.0, 127.0), "NCHW")
    first = {"flow": np.array([1, 0, 0, 1], float).reshape(1, 1, 4, 1, 1),
             "rgb": np.array([1, 0], float).reshape(1, 1, 2, 1, 1)}
    second = {"flow": np.array([1, 0, 1, 0], float).reshape(1, 1, 4, 1, 1),
              "rgb": np.array([3, 0], float).reshape(1, 1, 2, 1, 1)}
    result = evolution([first, second], [flow, image], ["early", "final"])
    # fields (1, 0), (0, 1) then (1, 0), (1, 0): cos = 1/2; variation 2/1 then 0
    np.testing.assert_allclose(result["flow"].change[0, 0, 0], 0.5)
    np.testing.assert_allclose(result["flow"].variation[:, 0, 0], [2.0, 0.0])
    np.testing.assert_allclose(result["rgb"].change[0, 0, 0], 0.0, atol=1e-12)  # same pattern, 3× the scale
    assert np.all(np.isnan(result["rgb"].variation))  # one step: no time
    np.testing.assert_allclose(cosine_change(np.ones((1, 1, 3)), -np.ones((1, 1, 3))), [[2.0]])
    assert np.isnan(cosine_change(np.zeros((1, 1, 3)), np.ones((1, 1, 3)))[0, 0])
    with pytest.raises(ValueError, match="at least two checkpoints"):
        evolution([first], [flow])


def test_evolution_over_training_checkpoints(two_stream) -> None:
    checkpoints = ["two_stream_small.epoch1.onnx", "two_stream_small.epoch4.onnx", "two_stream_small.onnx"]
    units = [Logit("logits", c) for c in (SLOW, FAST)]
    optimized = []
    for name in checkpoints:
        model = two_stream if name == "two_stream_small.onnx" else import_model(TRAINED / name, inputs=TWO_STREAM_INPUTS)
        result = maximize(model, units, [Setting(kappa=1.0, gamma=1.0)], MaximizeConfig(iterations=32, seed=0))
        optimized.append({spec.name: result.stacked(spec.name) for spec in model.inputs})
    found = evolution(optimized, two_stream.inputs, checkpoints)
    flow = found["flow"]
    assert flow.change.shape == (2, 2, 1) and flow.variation.shape == (3, 2, 1)
    assert np.all(np.isfinite(flow.change)) and np.all((flow.change > 0) & (flow.change < 2))
    assert np.all(np.isfinite(flow.variation)) and np.all(flow.variation > 0)
    # training settles: each logit's optimized appearance changes more from epoch 1 to 4 than from 4 to the end
    # (measured: 0.18, 0.25 then 0.02, 0.01)
    assert np.all(found["rgb"].change[0] > 2 * found["rgb"].change[1]), found["rgb"].change[:, :, 0]
    # the module's numbers equal the definitions computed directly on the last unit's flow
    a, b = (opt["flow"][1, 0].ravel().astype(np.float64) for opt in optimized[1:])
    np.testing.assert_allclose(flow.change[1, 1, 0], 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), rtol=1e-9)
    fields = optimized[2]["flow"][1, 0].astype(np.float64).reshape(10, -1)
    expected = np.mean(np.sum(np.diff(fields, axis=0) ** 2, 1)) / np.mean(np.sum(fields**2, 1))
    np.testing.assert_allclose(flow.variation[2, 1, 0], expected, rtol=1e-9)
    np.testing.assert_allclose(temporal_variation(optimized[2]["flow"], two_stream.inputs[1])[1, 0], expected, rtol=1e-9)


@pytest.mark.slow  # 128 steps for three logits of two checkpoints: about 6 minutes on two loaded cores
@pytest.mark.timeout(1800)
def test_temporal_variation_grows_from_the_untrained_to_the_trained_checkpoint(tmp_path, two_stream) -> None:
    """Fig. 9: temporal structure forms with training. Under the temporal regularizer (γ = 1) an untrained
    network asks for no change over time and its optimized flow is nearly constant; the trained network's
    logits need motion, which the regularizer cannot remove. Measured: 0.007–0.015 untrained, 0.07–0.35 trained."""
    untrained = import_model(_untrained("two_stream_small", tmp_path / "untrained.onnx"), inputs=TWO_STREAM_INPUTS)
    units = [Logit("logits", c) for c in (0, 4, 5)]
    optimized = []
    for model in (untrained, two_stream):
        result = maximize(model, units, [Setting(kappa=1.0, gamma=1.0)], MaximizeConfig(iterations=128, seed=0))
        optimized.append({spec.name: result.stacked(spec.name) for spec in model.inputs})
    flow = evolution(optimized, two_stream.inputs, ["untrained", "trained"])["flow"]
    before, after = flow.variation[0, :, 0], flow.variation[1, :, 0]
    assert np.all(before < 0.05) and np.all(after > 3 * before), (before, after)
    assert np.all(flow.change[0, :, 0] > 0.2), flow.change  # and the optimized flow itself is another pattern
