"""Shared parity check for converter tests: onnxruntime against the converted torch module."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
import onnx2torch
import onnxruntime as ort
import pytest
import torch
from onnx import helper

import kinetoscope.server.importer.converters  # noqa: F401  (registers our converters)

ort.set_default_logger_severity(3)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    opset: int,
    initializers: Sequence[onnx.TensorProto] = (),
) -> onnx.ModelProto:
    """A checked model whose IR version is the lowest its opset allows (onnxruntime refuses the newest)."""
    opsets = [helper.make_opsetid("", opset)]
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=max(helper.find_min_ir_version_for(opsets), 7))
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # also types the untyped outputs
    onnx.checker.check_model(model, full_check=True)
    return model


def one_node_model(
    op: str,
    feeds: dict[str, np.ndarray],
    opset: int,
    attrs: dict | None = None,
    constants: dict[str, np.ndarray] | None = None,
    num_outputs: int = 1,
) -> onnx.ModelProto:
    """One `op` node reading `feeds` (graph inputs) then `constants` (initializers), in that order."""
    constants = constants or {}
    names = list(feeds) + list(constants)
    outputs = [f"y{i}" for i in range(num_outputs)]
    node = helper.make_node(op, names, outputs, **(attrs or {}))
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in feeds.items()
    ]
    inits = [onnx.numpy_helper.from_array(v, n) for n, v in constants.items()]
    outs = [helper.make_value_info(n, onnx.TypeProto()) for n in outputs]
    return make_model([node], inputs, outs, opset, inits)


def check_parity(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    grad: bool = True,
    reference: onnx.ModelProto | None = None,
) -> None:
    """onnx2torch.convert(model) computes what onnxruntime does (on `reference`, an equivalent model, when
    onnxruntime lacks a kernel for `model`'s op version); gradients reach every float input."""
    session = ort.InferenceSession((reference or model).SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    module = onnx2torch.convert(model).eval()  # inference mode, as onnxruntime runs Dropout
    tensors = [torch.from_numpy(v.copy()) for v in feeds.values()]
    floats = [t for t in tensors if t.is_floating_point()]
    for t in floats:
        t.requires_grad_(grad)
    got = module(*tensors)
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert tuple(g.shape) == e.shape, (tuple(g.shape), e.shape)
        g = g.detach().numpy()
        assert g.dtype == e.dtype, (g.dtype, e.dtype)
        if e.size and np.issubdtype(e.dtype, np.floating):
            finite = np.isfinite(e)
            np.testing.assert_array_equal(g[~finite], e[~finite])
            if finite.any():
                err, ref = float(np.abs(g - e)[finite].max()), float(np.abs(e)[finite].max())
                assert err <= 1e-5 * ref + 1e-30, f"max abs error {err} against max |reference| {ref}"
        else:
            np.testing.assert_array_equal(g, e)
    for t, v in zip(tensors, feeds.values()):
        np.testing.assert_array_equal(t.detach().numpy(), v)  # inputs are left untouched
    if grad and floats:
        differentiable = [g for g in got if g.is_floating_point() and g.numel()]
        assert differentiable, "no float output to differentiate"
        loss = sum((g * torch.rand_like(g)).sum() for g in differentiable)
        loss.backward()
        for t in floats:
            assert t.grad is not None and bool(torch.isfinite(t.grad).all())


@pytest.fixture(name="parity")
def fixture_parity() -> Callable[..., None]:
    """`check_parity`, for test modules."""
    return check_parity


@pytest.fixture(name="one_node")
def fixture_one_node() -> Callable[..., onnx.ModelProto]:
    """`one_node_model`, for test modules."""
    return one_node_model


@pytest.fixture(name="graph_model")
def fixture_graph_model() -> Callable[..., onnx.ModelProto]:
    """`make_model`, for test modules."""
    return make_model
