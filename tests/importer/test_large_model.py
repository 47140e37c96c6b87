"""A model above protobuf's 2 GiB limit imports, its weights given as external data."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from kinetoscope.server.importer import import_model

pytestmark = pytest.mark.slow

CHANNELS = 4096
LAYERS = 33  # 33 × 4096² × 4 bytes ≈ 2.2 GB of weights


def test_model_over_two_gib_imports_with_external_data() -> None:
    rng = np.random.default_rng(0)
    nodes, inits, files = [], [], {}
    previous = "x"
    for index in range(LAYERS):
        name = f"w{index}"
        weight = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[CHANNELS, CHANNELS, 1, 1])
        weight.data_location = TensorProto.EXTERNAL
        for key, value in {"location": f"{name}.bin", "offset": "0", "length": str(CHANNELS * CHANNELS * 4)}.items():
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
        inits.append(weight)
        files[f"{name}.bin"] = (rng.standard_normal((CHANNELS, CHANNELS), dtype=np.float32) / 64).tobytes()
        out = "y" if index == LAYERS - 1 else f"h{index}"
        nodes.append(helper.make_node("Conv", [previous, name], [out], name=f"conv{index}"))
        previous = out
    graph = helper.make_graph(
        nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS, 1, 1])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    assert sum(len(blob) for blob in files.values()) > 2 << 30
    imported = import_model(model.SerializeToString(), inputs=["x=1x4096x1x1:image:-1..1"], external_data=files)
    del files
    assert imported.parity.max_rel_err <= 1e-4
    assert len(imported.catalog) == LAYERS
