"""The optimization loop on small graphs: determinism, batching, stream selection, failures, cancel."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from kinetoscope.server.engine import Cancelled, Channel, Logit, MaximizeConfig, Neuron, Setting, maximize
from kinetoscope.server.engine.truncate import truncate
from kinetoscope.server.importer import import_model
from kinetoscope.server.importer.capture import capture


class _TwoStream(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rgb_conv = nn.Conv2d(3, 4, 3, padding=1, stride=2)
        self.flow_conv = nn.Conv2d(4, 4, 3, padding=1, stride=2)
        self.fusion = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, rgb, flow):
        a, m = torch.relu(self.rgb_conv(rgb)), torch.relu(self.flow_conv(flow))
        fused = torch.relu(self.fusion(torch.cat([a, m], 1)))
        return self.fc(fused.flatten(1))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(_TwoStream().eval(), (torch.zeros(1, 3, 16, 16), torch.zeros(1, 4, 16, 16)), buffer,
                      input_names=["rgb", "flow"], output_names=["logits"], opset_version=17, dynamo=False)
    return import_model(buffer.getvalue(), inputs=["flow=1x4x16x16:stacked_flow"])


def _layer(model, node: str) -> str:
    return model.layer(node).name


FAST = MaximizeConfig(iterations=24)


def test_truncated_graph_computes_the_same_layers(model) -> None:
    names = [_layer(model, "/rgb_conv/Conv"), _layer(model, "/fusion/Conv")]
    graph = truncate(model.module, names)
    x = (torch.randn(2, 3, 16, 16), torch.randn(2, 4, 16, 16))
    with capture(model.module, names) as seen, torch.no_grad():
        model.module(*x)
        got = graph(*x)
    for name, tensor in zip(names, got):
        torch.testing.assert_close(tensor, seen[name])
    assert not any("fc" in str(n.target) for n in graph.graph.nodes), "layers after the target are cut away"


def test_same_seed_same_result_and_units_rise(model) -> None:
    fusion = _layer(model, "/fusion/Conv")
    first = maximize(model, [Channel(fusion, 0), Channel(fusion, 1)], [Setting(1, 0)], FAST)
    again = maximize(model, [Channel(fusion, 0), Channel(fusion, 1)], [Setting(1, 0)], FAST)
    for a, b in zip(first.results, again.results):
        np.testing.assert_array_equal(a[0].inputs["rgb"], b[0].inputs["rgb"])
        np.testing.assert_array_equal(a[0].inputs["flow"], b[0].inputs["flow"])
    for row in first.results:
        trajectory = row[0].activations
        assert trajectory[-1] > trajectory[0], "the unit's activation grows during optimization"
    other = maximize(model, [Channel(fusion, 0)], [Setting(1, 0)], MaximizeConfig(iterations=24, seed=1))
    assert not np.array_equal(other.results[0][0].inputs["rgb"], first.results[0][0].inputs["rgb"])


def test_a_unit_does_not_depend_on_its_batch_neighbours(model) -> None:
    fusion = _layer(model, "/fusion/Conv")
    alone = maximize(model, [Channel(fusion, 2)], [Setting(1, 5)], FAST)
    crowd = maximize(model, [Channel(fusion, 0), Channel(fusion, 2)], [Setting(1, 0), Setting(1, 5)], FAST)
    np.testing.assert_allclose(crowd.results[1][1].inputs["flow"], alone.results[0][0].inputs["flow"], atol=1e-3)
    chunked = maximize(model, [Channel(fusion, 0), Channel(fusion, 2)], [Setting(1, 0), Setting(1, 5)],
                       MaximizeConfig(iterations=24, max_batch=1))
    np.testing.assert_allclose(chunked.results[1][1].inputs["flow"], alone.results[0][0].inputs["flow"], atol=1e-3)


def test_only_inputs_that_feed_the_unit_are_optimized(model) -> None:
    rgb_unit = Channel(_layer(model, "/rgb_conv/Conv"), 1)
    flow_unit = Neuron(_layer(model, "/flow_conv/Conv"), 1)
    fusion_unit = Channel(_layer(model, "/fusion/Conv"), 1)
    result = maximize(model, [rgb_unit, flow_unit, fusion_unit], [Setting()], FAST)
    (rgb,), (flow,), (fusion,) = result.results
    assert rgb.inputs["flow"] is None and rgb.inputs["rgb"] is not None
    assert flow.inputs["rgb"] is None and flow.inputs["flow"] is not None
    assert fusion.inputs["rgb"] is not None and fusion.inputs["flow"] is not None
    assert result.stacked("flow").shape == (3, 1, 4, 16, 16)
    assert np.all(result.stacked("flow")[0] == 0)


def test_inputs_stay_inside_the_bound(model) -> None:
    result = maximize(model, [Channel(_layer(model, "/fusion/Conv"), 3)], [Setting(0, 0)],
                      MaximizeConfig(iterations=24, learning_rate=0.5))
    rgb = result.results[0][0].inputs["rgb"]
    assert np.sqrt((rgb**2).sum(0)).max() <= 160.0 * (1 + 1e-5)


def test_a_non_finite_unit_is_flagged_and_the_rest_go_on(model) -> None:
    fusion = _layer(model, "/fusion/Conv")
    result = maximize(model, [float("nan") * Channel(fusion, 0), Channel(fusion, 1)], [Setting()], FAST)
    broken, healthy = result.results[0][0], result.results[1][0]
    assert broken.stopped is not None and "non-finite" in broken.stopped
    assert np.isfinite(broken.inputs["rgb"]).all()
    assert healthy.stopped is None and healthy.activations[-1] > healthy.activations[0]


def test_cancel_stops_within_one_step(model) -> None:
    steps = []

    def on_step(report) -> None:
        steps.append(report.step)

    with pytest.raises(Cancelled, match="stopped at step 3"):
        maximize(model, [Channel(_layer(model, "/fusion/Conv"), 0)], [Setting()], FAST,
                 on_step=on_step, should_stop=lambda: len(steps) >= 3)
    assert steps == [0, 1, 2]


def test_jitter_stays_below_the_layer_stride(model) -> None:
    from kinetoscope.server.engine.transforms import Jitter

    spec = model.inputs[0]
    shifts = Jitter(spec, [(4, 2)] * 3 + [(1, 8)]).schedule(seed=0, steps=200)
    assert shifts.shape == (200, 4, 2)
    assert shifts[:, :3, 0].max() == 3 and shifts[:, :3, 1].max() == 1 and shifts.min() == 0
    assert shifts[:, 3, 0].max() == 0 and shifts[:, 3, 1].max() == 7
    assert torch.equal(shifts[:, 0], shifts[:, 2]), "samples with the same limits share each step's shift"
    assert len(set(map(tuple, shifts[:, 0].tolist()))) == 8, "every shift below the limits occurs"
    x = torch.arange(16.0).reshape(1, 1, 1, 16).expand(2, 3, 16, 16)
    rolled = Jitter(spec, [(4, 4)] * 2)(x, torch.tensor([[0, 1], [0, 3]]))
    assert rolled[0, 0, 0, :3].tolist() == [15.0, 0.0, 1.0] and rolled[1, 0, 0, :4].tolist() == [13.0, 14.0, 15.0, 0.0]


def test_a_batch_that_reads_one_input_only(model) -> None:
    # no jitter: a one-pixel shift moves a stride-2 linear unit's sampling grid and can flip its sign
    result = maximize(model, [Channel(_layer(model, "/flow_conv/Conv"), 0), Channel(_layer(model, "/flow_conv/Conv"), 2)],
                      [Setting()], MaximizeConfig(iterations=24, jitter=False))
    for row in result.results:
        assert row[0].inputs["rgb"] is None and row[0].activations[-1] > row[0].activations[0]


def test_the_native_loop_and_the_torch_update_optimize_alike(model) -> None:
    """The default CPU path (one C loop per input) against the eager torch update it replaces."""
    from kinetoscope.server.engine.native import NativeUpdate

    if not NativeUpdate.available():
        pytest.skip("no C compiler to build the native loop")
    objectives = [Channel(_layer(model, "/fusion/Conv"), c) for c in range(2)]
    settings = [Setting(1.0, 0.0), Setting(0.5, 5.0)]
    runs = [maximize(model, objectives, settings, MaximizeConfig(iterations=24, compile=compile))
            for compile in (None, False)]
    for native_row, torch_row in zip(runs[0].results, runs[1].results):
        for fused, plain in zip(native_row, torch_row):
            # float32 sums in another order: after 24 steps inputs (|x| ≤ B = 160) agree to ~5e-4
            assert fused.activation == pytest.approx(plain.activation, rel=1e-4)
            np.testing.assert_allclose(fused.losses, plain.losses, rtol=1e-4)
            for name, values in plain.inputs.items():
                np.testing.assert_allclose(fused.inputs[name], values, atol=1e-2)


def test_native_cpu_runs_compile_nothing(model, monkeypatch) -> None:
    """Where the native loop steps every input, a long run (which asks for compiled torch kernels)
    must not compile them: a compile costs seconds on the first step and prints inductor's warnings."""
    from kinetoscope.server.engine.native import NativeUpdate

    if not NativeUpdate.available():
        pytest.skip("no C compiler: the torch kernels step the inputs")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.compile was called on a run the native loop serves")

    monkeypatch.setattr(torch, "compile", refuse)
    config = MaximizeConfig(iterations=64)
    assert config.compiles_on("cpu"), "the run must be long enough to ask for compiled kernels"
    # units of layers with different strides: each sample jitters by its own shifts, which the
    # first step rolls with the torch kernel
    objectives = [Channel(_layer(model, "/fusion/Conv"), 0), Logit("logits", 1)]
    result = maximize(model, objectives, [Setting(1, 0), Setting(1, 5)], config)
    assert np.isfinite(result.activation_table()).all()
