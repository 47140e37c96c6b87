"""The Python client reads what a result maximized from UnitResult.target, keeps it through result.npz and sweeps."""

from __future__ import annotations

import numpy as np

from kinetoscope.client.client import Client
from kinetoscope.client.render.result import load_result
from kinetoscope.client.sweep import merge_batches
from kinetoscope.client.types import Target
from kinetoscope.v1 import kinetoscope_pb2 as pb

T = pb.Target


def _maximize(shared) -> object:
    objectives = [
        pb.Objective(terms=[T(kind=T.CHANNEL, layer="/conv_fusion/relu/Relu", channel=7)]),  # a node name
        pb.Objective(terms=[T(kind=T.LOGIT, channel=3)]),
        pb.Objective(terms=[T(kind=T.NEURON, layer="rgb/conv3", channel=2), T(layer="conv_fusion", channel=1, weight=-0.5)]),
    ]
    with Client(f"127.0.0.1:{shared.port}") as client:
        return client.maximize("small", objectives, [(1.0, 0.0)], options=pb.MaximizeOptions(iterations=2))


def test_results_carry_structured_targets_through_result_npz(shared, tmp_path) -> None:
    result = _maximize(shared)
    expected = [
        (Target("channel", "conv_fusion", 7),),
        (Target("logit", "logits", 3),),
        (Target("neuron", "rgb/conv3", 2, (4, 4)), Target("channel", "conv_fusion", 1, (), -0.5)),
    ]
    assert result.targets == expected
    assert [row[0].target for row in result.results] == expected
    result.save_npz(tmp_path / "result.npz")
    loaded = load_result(tmp_path / "result.npz")
    assert loaded.targets == tuple(expected)
    assert loaded.target(0) == Target("channel", "conv_fusion", 7) and loaded.target(2) is None
    assert loaded.units == tuple(result.units)  # the display labels stay, for people


def test_a_sweep_merge_keeps_targets_in_unit_order(shared, tmp_path) -> None:
    result = _maximize(shared)
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    result.save_npz(first)
    # units 3, 4, 5 of the layer (channels 13, 14, 15), listed before units 0, 1, 2
    later = [(Target("channel", "conv_fusion", c),) for c in (13, 14, 15)]
    result.targets = later
    result.save_npz(second)
    merge_batches([(second, (3, 4, 5)), (first, (0, 1, 2))], tmp_path / "merged.npz")
    merged = load_result(tmp_path / "merged.npz")
    assert [terms[0].channel for terms in merged.targets] == [7, 3, 2, 13, 14, 15]
    # a batch from before results carried targets: the merged file has none rather than failing
    with np.load(second, allow_pickle=False) as data:
        old = {key: data[key] for key in data.files if key != "unit_targets"}
    np.savez_compressed(second, **old)
    merge_batches([(first, (0, 1, 2)), (second, (3, 4, 5))], tmp_path / "merged.npz")
    assert load_result(tmp_path / "merged.npz").targets == () and load_result(tmp_path / "merged.npz").target(0) is None
