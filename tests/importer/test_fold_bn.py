"""BatchNorm folding: numerically exact (vs onnxruntime on the unfolded graph) for every producer kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import ModelProto, helper

from kinetoscope.server.importer.fold_bn import fold_batchnorm
from kinetoscope.server.importer.graph import infer_shapes

from .onnx_builders import bn_node, bn_params, init, model, run_ort

RNG = np.random.default_rng(0)


def _assert_same(m: ModelProto, feeds, folded_expected: int, remaining_expected: int) -> ModelProto:
    before = run_ort(m, feeds)
    folded = ModelProto()
    folded.CopyFrom(m)
    infer_shapes(folded)
    report = fold_batchnorm(folded)
    assert (report.folded, report.remaining) == (folded_expected, remaining_expected)
    assert not [n for n in folded.graph.node if n.op_type == "BatchNormalization"]
    after = run_ort(folded, feeds)
    for ref, got in zip(before, after):
        assert np.max(np.abs(ref - got)) / np.max(np.abs(ref)) < 1e-5
    return folded


@pytest.mark.parametrize(
    "rank,group,bias",
    [(1, 1, True), (2, 1, True), (2, 1, False), (3, 1, True), (2, 2, True), (2, 6, False), (3, 6, True)],
    ids=["conv1d", "conv2d", "conv2d-nobias", "conv3d", "grouped", "depthwise", "depthwise3d"],
)
def test_conv_bn_folds_exactly(rank: int, group: int, bias: bool) -> None:
    cin, cout, k = 6, 6 if group == 6 else 8, 3
    spatial = [5] * rank
    inits = [init("w", RNG.normal(size=(cout, cin // group, *[k] * rank)))] + bn_params("bn", cout, RNG)
    inputs = ["x", "w"]
    if bias:
        inits.append(init("b", RNG.normal(size=cout)))
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["c"], group=group, pads=[1] * 2 * rank), bn_node("bn", "c", "y")]
    m = model(nodes, {"x": [1, cin, *spatial]}, ["y"], inits)
    folded = _assert_same(m, {"x": RNG.normal(size=(1, cin, *spatial)).astype(np.float32)}, 1, 0)
    conv = folded.graph.node[0]
    assert conv.op_type == "Conv" and conv.output[0] == "y", "the folded conv takes over the BN's output name"


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_bn_folds_exactly(group: int) -> None:
    cin, cout = 4, 6
    inits = [init("w", RNG.normal(size=(cin, cout // group, 3, 3))), init("b", RNG.normal(size=cout))]
    inits += bn_params("bn", cout, RNG)
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], group=group, strides=[2, 2]), bn_node("bn", "c", "y")]
    m = model(nodes, {"x": [1, cin, 4, 4]}, ["y"], inits)
    _assert_same(m, {"x": RNG.normal(size=(1, cin, 4, 4)).astype(np.float32)}, 1, 0)


@pytest.mark.parametrize("trans_b,with_c,alpha,beta", [(1, True, 1.0, 1.0), (0, True, 0.5, 2.0), (1, False, 2.0, 1.0)])
def test_gemm_bn_folds_exactly(trans_b: int, with_c: bool, alpha: float, beta: float) -> None:
    k, n = 12, 5
    b = RNG.normal(size=(n, k) if trans_b else (k, n))
    inits = [init("B", b)] + bn_params("bn", n, RNG)
    inputs = ["x", "B"]
    if with_c:
        inits.append(init("C", RNG.normal(size=n)))
        inputs.append("C")
    nodes = [helper.make_node("Gemm", inputs, ["g"], transB=trans_b, alpha=alpha, beta=beta), bn_node("bn", "g", "y")]
    m = model(nodes, {"x": [3, k]}, ["y"], inits)
    _assert_same(m, {"x": RNG.normal(size=(3, k)).astype(np.float32)}, 1, 0)


def test_unfoldable_bns_become_affine_with_their_names() -> None:
    """Pre-activation BN, BN after Concat / Add, BN on a graph input, BN after a multi-use conv."""
    c = 4
    inits = [init("w", RNG.normal(size=(c, c, 3, 3))), init("w2", RNG.normal(size=(c, 2 * c, 1, 1)))]
    for name in ("bn_in", "bn_pre", "bn_cat", "bn_add", "bn_multi"):
        inits += bn_params(name, 2 * c if name == "bn_cat" else c, RNG)
    nodes = [
        bn_node("bn_in", "x", "a"),                       # on the input
        helper.make_node("Relu", ["a"], ["r"]),
        bn_node("bn_pre", "r", "p"),                      # BN → ReLU → Conv (pre-activation)
        helper.make_node("Relu", ["p"], ["pr"]),
        helper.make_node("Conv", ["pr", "w"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c1", "x"], ["cat"], axis=1),
        bn_node("bn_cat", "cat", "bc"),                   # after Concat
        helper.make_node("Conv", ["bc", "w2"], ["c2"]),
        helper.make_node("Add", ["c2", "x"], ["sum"]),
        bn_node("bn_add", "sum", "ba"),                   # after Add
        helper.make_node("Conv", ["ba", "w"], ["c3"], pads=[1, 1, 1, 1]),
        bn_node("bn_multi", "c3", "bm"),                  # the conv output is also read elsewhere
        helper.make_node("Add", ["bm", "c3"], ["y"]),
    ]
    m = model(nodes, {"x": [1, c, 6, 6]}, ["y"], inits)
    folded = _assert_same(m, {"x": RNG.normal(size=(1, c, 6, 6)).astype(np.float32)}, 0, 5)
    produced = {o for n in folded.graph.node for o in n.output}
    assert {"a", "p", "bc", "ba", "bm"} <= produced


def test_large_folded_weights_reach_the_onnx_graph_only_when_it_is_wanted() -> None:
    """A 147 KB folded conv weight stays out of protobuf through the import (the module holds it); the graph read
    afterwards has every weight's bytes and computes what the module does."""
    from kinetoscope.server.importer import import_model
    from kinetoscope.server.model_meta import describe

    inits = [init("w", RNG.normal(size=(64, 64, 3, 3)) * 0.05)] + bn_params("bn", 64, RNG)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"), bn_node("bn", "c", "y")]
    imported = import_model(model(nodes, {"x": [1, 64, 8, 8]}, ["y"], inits).SerializeToString())
    assert imported.bn_folded == 1
    described = describe(imported)  # what a sandboxed import sends back: no weights written for it
    assert imported._graph.ByteSize() < 64 * 64 * 9 * 4, "the folded weight is not in protobuf yet"
    graph = imported.graph
    assert graph.ByteSize() > 64 * 64 * 9 * 4 and described["layers"] == len(imported.catalog)
    for tensor in graph.graph.initializer:
        assert len(tensor.raw_data) == int(np.prod(tensor.dims)) * 4, tensor.name
    x = RNG.normal(size=(1, 64, 8, 8)).astype(np.float32)
    (expected,) = run_ort(graph, {"x": x})
    got = imported.module(torch.from_numpy(x)).detach().numpy()
    assert np.max(np.abs(expected - got)) / np.max(np.abs(expected)) < 1e-5
    assert imported.graph is graph, "written once"
