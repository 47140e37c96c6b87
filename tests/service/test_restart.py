"""A server restarted on the same store keeps its models, and imports them again to maximize."""

from __future__ import annotations

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import channel_objectives, collect, import_trained, start


def test_a_restart_keeps_the_store(tmp_path) -> None:
    first = start(tmp_path)
    try:
        info = import_trained(first, name="kept")
        before = first.models.GetModel(pb.GetModelRequest(model="kept"), timeout=10)
    finally:
        first.stop()

    second = start(tmp_path)
    try:
        assert [(m.id, m.name) for m in second.models.ListModels(pb.ListModelsRequest(), timeout=10).models] == [(info.id, "kept")]
        after = second.models.GetModel(pb.GetModelRequest(model=info.id), timeout=10)
        assert after == before
        request = pb.MaximizeRequest(model="kept", objectives=channel_objectives("conv_fusion", [5]),
                                     options=pb.MaximizeOptions(iterations=4))
        got = collect(second.vis.Maximize(request, timeout=120))  # the new server imports the stored bytes again
        assert got.inputs[(0, 0)]["flow"].shape == (20, 32, 32)
        assert second.serving()
    finally:
        second.stop()
