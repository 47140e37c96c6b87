"""Tiny ONNX graphs for importer tests, built with onnx.helper."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def bn_params(prefix: str, channels: int, rng: np.random.Generator) -> list[onnx.TensorProto]:
    """Non-trivial BatchNorm statistics: scale, bias, mean, var."""
    return [
        init(f"{prefix}.scale", rng.uniform(0.5, 1.5, channels)),
        init(f"{prefix}.bias", rng.uniform(-1, 1, channels)),
        init(f"{prefix}.mean", rng.uniform(-1, 1, channels)),
        init(f"{prefix}.var", rng.uniform(0.5, 2.0, channels)),
    ]


def bn_node(prefix: str, x: str, y: str) -> onnx.NodeProto:
    return helper.make_node(
        "BatchNormalization", [x, f"{prefix}.scale", f"{prefix}.bias", f"{prefix}.mean", f"{prefix}.var"], [y],
        name=prefix, epsilon=1e-3,
    )


def model(nodes, inputs: dict[str, list[int]], outputs: list[str], inits, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = min(m.ir_version, 10)
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m, full_check=True)
    return m


def run_ort(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)
