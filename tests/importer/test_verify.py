"""Verification against onnxruntime: errors measured, divergence located, IR versions lowered."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from kinetoscope.server.importer import ParityError, import_model
from kinetoscope.server.importer.convert import tensor_sources
from kinetoscope.server.importer.verify import verify

from .onnx_builders import init, model

RNG = np.random.default_rng(2)


def _three_layer_model():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["y"], name="relu2"),
    ]
    inits = [init("w1", RNG.normal(size=(4, 3, 3, 3))), init("w2", RNG.normal(size=(4, 4, 3, 3)))]
    return model(nodes, {"x": [1, 3, 8, 8]}, ["y"], inits)


def test_divergence_names_the_first_wrong_layer() -> None:
    original = _three_layer_model()
    imported = import_model(original.SerializeToString())
    assert imported.parity.max_rel_err < 1e-6
    conv2, _ = tensor_sources(imported.module)["c2"]
    with torch.no_grad():
        conv2.weight[0, 0, 0, 0] += 1.0
    with pytest.raises(ParityError, match=r"first diverges at layer 'c2' \(Conv node 'conv2'\)"):
        verify(original, imported.graph, imported.module, imported.inputs)


def test_newer_ir_version_than_onnxruntime_reads_is_lowered() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["r"], ["y"])]
    m = model(nodes, {"x": [1, 3, 4, 4]}, ["y"], [], opset=23)
    m.ir_version = 14  # what onnx 1.23 writes by default; onnxruntime 1.31 reads up to 13
    imported = import_model(m.SerializeToString())
    assert imported.parity.max_rel_err < 1e-6


def test_input_without_gradient_is_refused() -> None:
    """A graph whose output does not depend smoothly on its input cannot be optimized."""
    nodes = [helper.make_node("Floor", ["x"], ["y"])]
    m = model(nodes, {"x": [1, 3, 4, 4]}, ["y"], [])
    with pytest.raises(ParityError, match="gradient of the outputs w.r.t. input 'x' is zero"):
        import_model(m.SerializeToString())
