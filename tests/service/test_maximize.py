"""VisualizationService.Maximize over a real server: progress, results reassembled from chunks, and refused requests."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from kinetoscope.server.service.wire import CHUNK_BYTES, WireError, assemble, from_tensor, to_chunks, to_tensor
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import channel_objectives, code_of, collect

FAST = pb.MaximizeOptions(iterations=8, progress_every=2)


def test_maximize_streams_progress_then_results(shared) -> None:
    request = pb.MaximizeRequest(
        model="small",
        objectives=[
            *channel_objectives("conv_fusion", [3]),
            pb.Objective(terms=[pb.Target(kind=pb.Target.LOGIT, channel=2)]),  # layer empty: the model's output
            pb.Objective(terms=[pb.Target(kind=pb.Target.NEURON, layer="rgb/conv3", channel=1, position=[2, 5]),
                                pb.Target(kind=pb.Target.CHANNEL, layer="conv_fusion", channel=0, weight=0.5)]),
        ],
        settings=[pb.RegularizerSetting(kappa=1, gamma=0), pb.RegularizerSetting(kappa=1, gamma=1)],
        options=FAST,
    )
    got = collect(shared.vis.Maximize(request, timeout=120))
    steps = [p.step for p in got.progress]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 7
    assert all(p.samples_total == 6 and p.iterations == 8 and len(p.activation) == len(p.loss) for p in got.progress)
    assert sorted(got.results) == [(u, s) for u in range(3) for s in range(2)]
    first = got.results[(0, 0)]
    assert first.objective == "Channel('conv_fusion', 3)" and (first.setting.kappa, first.setting.gamma) == (1, 0)
    assert len(first.losses) == len(first.activations) == 8
    assert np.isfinite(first.activation) and first.best_activation >= max(first.activations)
    assert "Logit('logits', 2)" in got.results[(1, 0)].objective
    assert "Neuron('rgb/conv3', 1, (2, 5))" in got.results[(2, 1)].objective and "0.5·" in got.results[(2, 1)].objective
    # the structured target, resolved: tensor names, weights and positions filled in
    T = pb.Target
    assert first.target == pb.Objective(terms=[T(kind=T.CHANNEL, layer="conv_fusion", channel=3, weight=1)])
    assert got.results[(1, 1)].target == pb.Objective(terms=[T(kind=T.LOGIT, layer="logits", channel=2, weight=1)])
    assert got.results[(2, 0)].target == pb.Objective(terms=[
        T(kind=T.NEURON, layer="rgb/conv3", channel=1, position=[2, 5], weight=1),
        T(kind=T.CHANNEL, layer="conv_fusion", channel=0, weight=0.5)])
    assert got.progress[-1].samples_done == got.progress[-1].samples_total == 6
    for key, unit in got.results.items():
        assert sorted(got.inputs[key]) == sorted(unit.optimized_inputs) == ["flow", "rgb"]
        assert got.inputs[key]["rgb"].shape == (3, 32, 32) and got.inputs[key]["flow"].shape == (20, 32, 32)
        assert got.inputs[key]["rgb"].dtype == np.float32 and np.abs(got.inputs[key]["rgb"]).max() > 0
    assert got.summary is not None and got.summary.seconds > 0
    assert any("normalized" in w for w in got.summary.warnings)


def test_unset_fields_take_our_defaults_not_proto3_zeros(shared) -> None:
    T = pb.Target
    request = pb.MaximizeRequest(
        model="small",
        objectives=[pb.Objective(terms=[T(kind=T.NEURON, layer="/conv_fusion/relu/Relu", channel=5)])],  # node name, no position
        settings=[pb.RegularizerSetting(gamma=0), pb.RegularizerSetting(kappa=0), pb.RegularizerSetting()],
        options=pb.MaximizeOptions(iterations=3),
    )
    got = collect(shared.vis.Maximize(request, timeout=120))
    assert [(r.setting.kappa, r.setting.gamma) for r in (got.results[(0, s)] for s in range(3))] == [(1, 0), (0, 1), (1, 1)]
    assert all(r.setting.HasField("kappa") and r.setting.HasField("gamma") for r in got.results.values())
    # the centre of conv_fusion's 8 × 8 grid, under its tensor name
    assert got.results[(0, 0)].target == pb.Objective(terms=[T(kind=T.NEURON, layer="conv_fusion", channel=5,
                                                               position=[4, 4], weight=1)])


def test_the_fourier_parameterization_is_chosen_per_call(shared) -> None:
    def run(param: str | None) -> np.ndarray:
        options = pb.MaximizeOptions(iterations=6)
        if param is not None:
            options.param = param
        request = pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", [1]), options=options)
        return collect(shared.vis.Maximize(request, timeout=120)).inputs[(0, 0)]["rgb"]

    default, pixel, fourier = run(None), run("pixel"), run("fourier")
    assert np.array_equal(default, pixel) and not np.allclose(fourier, pixel)
    assert np.sqrt((fourier**2).sum(0)).max() <= 160.0 * (1 + 1e-5)


def test_progress_counts_samples_over_the_whole_call(shared) -> None:
    request = pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", range(3)),
                                 settings=[pb.RegularizerSetting(gamma=g) for g in (0, 1)],
                                 options=pb.MaximizeOptions(iterations=4, progress_every=1, max_batch=4))
    got = collect(shared.vis.Maximize(request, timeout=120))
    seen = [(p.chunk_start, p.step, p.samples_done, len(p.activation)) for p in got.progress]
    assert seen == [(0, 0, 0, 4), (0, 1, 0, 4), (0, 2, 0, 4), (0, 3, 4, 4),
                    (4, 0, 4, 2), (4, 1, 4, 2), (4, 2, 4, 2), (4, 3, 6, 2)]
    assert {p.samples_total for p in got.progress} == {6}


def test_a_result_larger_than_4_mb_arrives_in_chunks(shared) -> None:
    request = pb.MaximizeRequest(
        model="small", objectives=channel_objectives("conv_fusion", range(8)),
        settings=[pb.RegularizerSetting(kappa=1, gamma=g) for g in (0, 0.5, 1, 2, 4, 8)],
        options=pb.MaximizeOptions(iterations=4),
    )
    got = collect(shared.vis.Maximize(request, timeout=120))
    total = sum(a.nbytes for arrays in got.inputs.values() for a in arrays.values())
    assert total > 4 << 20
    assert got.largest_message <= 1 << 20
    assert len(got.results) == 48
    stacked = np.stack([got.inputs[(u, s)]["flow"] for u in range(8) for s in range(6)])
    assert stacked.shape == (48, 20, 32, 32) and len({a.tobytes() for a in stacked}) == 48


def test_chunks_stay_under_1_mib_and_tensors_round_trip() -> None:
    array = np.random.default_rng(0).standard_normal((3, 700, 700)).astype(np.float32)  # 5.9 MB
    chunks = list(to_chunks("x", array))
    assert len(chunks) == -(-array.nbytes // CHUNK_BYTES) and all(c.ByteSize() <= 1 << 20 for c in chunks)
    assert np.array_equal(assemble(chunks)["x"], array)
    for value in (np.arange(6, dtype=">i4").reshape(2, 3), np.zeros((0, 4), np.float16), np.array([True, False])):
        assert np.array_equal(from_tensor(to_tensor(value)), value)
    with pytest.raises(WireError, match="takes 8 bytes"):
        from_tensor(pb.Tensor(shape=[2], dtype="float32", data=b"123"))


def _request(**overrides) -> pb.MaximizeRequest:
    fields = dict(model="small", objectives=channel_objectives("conv_fusion", [0]), options=FAST)
    fields.update(overrides)
    return pb.MaximizeRequest(**fields)


@pytest.mark.parametrize("request_, code, words", [
    (_request(model="nope"), grpc.StatusCode.NOT_FOUND, ["nope", "small"]),
    (_request(objectives=channel_objectives("conv9", [0])), grpc.StatusCode.INVALID_ARGUMENT,
     ["conv9", "Valid layers", "conv_fusion", "rgb/conv2"]),
    (_request(objectives=channel_objectives("conv_fusion", [64])), grpc.StatusCode.INVALID_ARGUMENT, ["0..63", "64"]),
    (_request(objectives=[pb.Objective(terms=[pb.Target(kind=pb.Target.NEURON, layer="conv_fusion", position=[9, 0])])]),
     grpc.StatusCode.INVALID_ARGUMENT, ["[9, 0]", "[8, 8]"]),
    (_request(objectives=[pb.Objective(terms=[pb.Target(kind=pb.Target.NEURON, layer="conv_fusion", position=[1])])]),
     grpc.StatusCode.INVALID_ARGUMENT, ["grid"]),
    (_request(objectives=[]), grpc.StatusCode.INVALID_ARGUMENT, ["at least one objective"]),
    (_request(objectives=[pb.Objective()]), grpc.StatusCode.INVALID_ARGUMENT, ["no terms"]),
    (_request(settings=[pb.RegularizerSetting(kappa=-1)]), grpc.StatusCode.INVALID_ARGUMENT, ["kappa"]),
    (_request(settings=[pb.RegularizerSetting(gamma=float("nan"))]), grpc.StatusCode.INVALID_ARGUMENT, ["gamma", "nan"]),
    (_request(objectives=[pb.Objective(terms=[pb.Target(layer="conv_fusion", weight=0)])]), grpc.StatusCode.INVALID_ARGUMENT,
     ["weight 0", "unset"]),
    (_request(options=pb.MaximizeOptions(learning_rate=0)), grpc.StatusCode.INVALID_ARGUMENT, ["learning_rate"]),
    (_request(options=pb.MaximizeOptions(iterations=0)), grpc.StatusCode.INVALID_ARGUMENT, ["iterations"]),
    (_request(options=pb.MaximizeOptions(iterations=10**6)), grpc.StatusCode.RESOURCE_EXHAUSTED, ["iterations", "10000"]),
    (_request(objectives=channel_objectives("conv_fusion", [0] * 2000)), grpc.StatusCode.RESOURCE_EXHAUSTED, ["1024"]),
    (_request(objectives=channel_objectives("conv_fusion", range(64)) * 16,
              settings=[pb.RegularizerSetting()] * 5), grpc.StatusCode.RESOURCE_EXHAUSTED, ["samples", "4096"]),
    (_request(recording="r1"), grpc.StatusCode.NOT_FOUND, ["no recording 'r1'"]),
    (_request(options=pb.MaximizeOptions(param="wavelet")), grpc.StatusCode.INVALID_ARGUMENT, ["param", "pixel, fourier"]),
], ids=["model", "layer", "channel", "position", "position-rank", "no-objective", "empty-objective", "kappa", "gamma", "weight",
        "learning-rate", "zero-iterations", "iterations", "units", "samples", "recording", "param"])
def test_bad_requests_get_a_status_that_says_what_to_fix(shared, request_, code, words) -> None:
    got, details = code_of(shared.vis.Maximize, request_, timeout=30)
    assert got == code, details
    for word in words:
        assert word in details
    assert shared.serving() and shared.serving("kinetoscope.v1.VisualizationService")
    assert shared.jobs.counts() == (0, 0)


def test_progress_cadence_every_n_steps_or_by_time() -> None:
    from kinetoscope.server.service.plan import ProgressCadence  # noqa: PLC0415

    def due(cadence: ProgressCadence, iterations: int = 10) -> list[int]:
        return [step for step in range(iterations) if cadence.due(step, iterations)]

    assert due(ProgressCadence(3)) == [0, 3, 6, 9]
    assert due(ProgressCadence(4)) == [0, 4, 8, 9]  # each chunk's last step too
    assert due(ProgressCadence(0, interval_s=3600)) == [0, 9]  # by time: a short run reports its first and last step
    assert due(ProgressCadence(0, interval_s=0)) == list(range(10))
    # a stored job's task: also at most `per_chunk` a chunk, however slow its steps
    assert due(ProgressCadence(0, interval_s=0, per_chunk=4), 16) == [0, 4, 8, 12, 15]
    assert due(ProgressCadence(0, interval_s=3600, per_chunk=4), 16) == [0, 15]


def test_default_progress_reports_the_first_and_last_step_of_a_short_call(shared) -> None:
    request = pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", [1]),
                                 options=pb.MaximizeOptions(iterations=6))
    steps = [p.step for p in collect(shared.vis.Maximize(request, timeout=120)).progress]
    assert steps[0] == 0 and steps[-1] == 5 and len(steps) == len(set(steps))
