"""A model over 100 MB travels in 1 MiB chunks and imports; so does one whose weights are an external-data file."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import upload

CHANNELS = 5200  # a 1x1 conv with a [5200, 5200, 1, 1] float32 weight: 108 MB


def _big_conv(external: bool) -> tuple[bytes, dict[str, bytes]]:
    weight = np.random.default_rng(0).standard_normal((CHANNELS, CHANNELS, 1, 1), dtype=np.float32) * 0.01
    tensor = numpy_helper.from_array(weight, "w")
    files = {}
    if external:
        files["w.bin"] = tensor.raw_data
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "w.bin"), ("offset", "0"), ("length", str(len(files["w.bin"])))):
            tensor.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, 2, 2])], [tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), files


def test_a_model_over_100_mb_imports_in_chunks(fresh) -> None:
    data, _ = _big_conv(external=False)
    assert len(data) > 100_000_000
    requests = list(upload(data, name="big", inputs=[pb.InputDeclaration(name="x", kind="image")]))
    assert len(requests) > 100 and max(r.ByteSize() for r in requests) <= (1 << 20) + 64
    info = fresh.models.ImportModel(iter(requests), timeout=300)
    assert info.name == "big" and info.layer_count == 1 and info.inputs[0].kind == "image"
    stored = fresh.store / "models" / info.id / "model.onnx"
    assert stored.stat().st_size == len(data)
    assert fresh.serving()


def test_external_data_travels_as_its_own_file(fresh) -> None:
    data, files = _big_conv(external=True)
    assert len(data) < 1_000 and len(files["w.bin"]) > 100_000_000
    info = fresh.models.ImportModel(upload(data, name="ext", external=files), timeout=300)
    assert (fresh.store / "models" / info.id / "external" / "w.bin").stat().st_size == len(files["w.bin"])
    detail = fresh.models.GetModel(pb.GetModelRequest(model="ext"), timeout=10)
    assert detail.layers[0].channels == CHANNELS
