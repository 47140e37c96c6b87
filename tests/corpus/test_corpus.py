"""The corpus is only useful if each entry really is what its record claims."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from . import ALL, TORCH_VARIANTS, CorpusModel, count_bn, count_foldable_bn, get
from .common import KINDS
from .handmade import OPSETS

NAMES = sorted(ALL)
TORCH_NAMES = sorted(f"{family}@{variant}" for family, variants in TORCH_VARIANTS.items() for variant in variants)


def _session(entry: CorpusModel) -> ort.InferenceSession:
    """An onnxruntime CPU session, on a copy with a lower IR version if ORT refuses the original."""
    try:
        return ort.InferenceSession(entry.onnx, providers=["CPUExecutionProvider"])
    except Exception as error:
        if "Unsupported model IR version" not in str(error):
            raise
    model = entry.proto()
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _random_feed(entry: CorpusModel, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.standard_normal(shape).astype(np.float32) for name, (shape, _) in entry.input_shapes().items()
    }


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers, Constant outputs and Identity copies of either, by value name."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


@pytest.mark.parametrize("name", NAMES)
def test_entry_passes_the_checker(name: str) -> None:
    entry = get(name)
    assert entry.name == name
    onnx.checker.check_model(entry.proto(), full_check=True)


@pytest.mark.parametrize("name", NAMES)
def test_bn_counts_match_the_graph(name: str) -> None:
    entry = get(name)
    model = entry.proto()
    assert count_bn(model) == entry.bn_count
    assert count_foldable_bn(model) == entry.foldable_bn
    if not name.endswith("@dynamo_opt"):  # only the optimizing export may drop BNs
        assert entry.bn_count > 0


@pytest.mark.parametrize("name", NAMES)
def test_bn_statistics_are_randomized(name: str) -> None:
    """Identity-like BNs would let a folding bug pass unnoticed."""
    model = get(name).proto()
    values = _constant_values(model)
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        scale, bias, mean, var = (values[value] for value in node.input[1:5])
        assert np.all(var > 0) and np.ptp(var) > 0.1, node.name
        assert not np.allclose(scale, 1.0) and np.ptp(scale) > 0.1, node.name
        assert not np.allclose(bias, 0.0), node.name
        assert not np.allclose(mean, 0.0), node.name


@pytest.mark.parametrize("name", NAMES)
def test_declared_inputs_match_the_graph(name: str) -> None:
    entry = get(name)
    graph = entry.proto().graph
    initializers = {init.name for init in graph.initializer}
    graph_inputs = {value.name: value for value in graph.input if value.name not in initializers}
    declared = entry.input_shapes()
    assert set(declared) == set(graph_inputs)
    for input_name, (shape, kind) in declared.items():
        assert kind in KINDS
        dims = graph_inputs[input_name].type.tensor_type.shape.dim
        assert len(dims) == len(shape)
        for dim, size in zip(dims, shape):
            assert dim.dim_param or dim.dim_value == size


@pytest.mark.parametrize("name", NAMES)
def test_runs_in_onnxruntime(name: str) -> None:
    entry = get(name)
    outputs = _session(entry).run(None, _random_feed(entry))
    assert outputs and all(np.isfinite(out).all() for out in outputs)
    assert outputs[0].shape[0] == 1


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_torch_exports_match_torch(name: str) -> None:
    """Both export paths (and the clean-up after dynamo's) keep the module's function."""
    import torch

    from .exporters import seeded_module
    from .torch_nets import SPECS, BN_TYPES

    family = name.split("@")[0]
    module, args = seeded_module(SPECS[family])
    entry = get(name)
    if not name.endswith("@dynamo_opt"):
        assert entry.bn_count == sum(isinstance(m, BN_TYPES) for m in module.modules())
    with torch.no_grad():
        expected = module(*args).numpy()
    feed = {input_name: arg.numpy() for input_name, arg in zip(entry.input_shapes(), args)}
    (actual,) = _session(entry).run(["logits"], feed)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_corpus_covers_exporters_and_opsets() -> None:
    opsets = set()
    for name in NAMES:
        model = get(name).proto()
        opsets.update(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    assert {11, 13, 17, 18, 21, 23} <= opsets
    for family, variants in TORCH_VARIANTS.items():
        assert any(v.startswith("ts") for v in variants) and "dynamo" in variants, family
    assert {f"opset_net@op{opset}" for opset in OPSETS} <= set(NAMES)


def test_newest_opset_keeps_onnx_default_ir_version() -> None:
    assert get("opset_net@op23").proto().ir_version == onnx.IR_VERSION


def test_weight_forms() -> None:
    constant = get("weights_constant").proto().graph
    assert not constant.initializer
    assert any(node.op_type == "Constant" for node in constant.node)
    identity = get("weights_identity").proto().graph
    fed_by_identity = {node.output[0] for node in identity.node if node.op_type == "Identity"}
    conv_weights = [node.input[1] for node in identity.node if node.op_type == "Conv"]
    assert conv_weights and set(conv_weights) <= fed_by_identity


def test_symbolic_dims_are_named() -> None:
    dims = get("dynamic_dims").proto().graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["p2o.DynamicDimension.0", 3, "height", "width"]


@pytest.mark.parametrize("name", ["tf_nhwc_32", "tf_nhwc_33", "tf_ndhwc_32"])
def test_tf_style_graphs_pad_same_upper(name: str) -> None:
    nodes = get(name).proto().graph.node
    assert nodes[0].op_type == "Transpose"
    same = [n for n in nodes if n.op_type in ("Conv", "MaxPool")]
    assert same and all(
        onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "auto_pad")) == b"SAME_UPPER"
        for n in same
    )
