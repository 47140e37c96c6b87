"""Verification against onnxruntime: errors measured, divergence located, IR versions lowered."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from kinetoscope.server.importer import ParityError, import_model
from kinetoscope.server.importer.convert import tensor_sources
from kinetoscope.server.importer.verify import verify

from .onnx_builders import init, model, run_ort

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


def _two_output_model():
    """A float output and an integer one (the predicted class), as classifiers often export."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("ReduceMean", ["c1"], ["y"], axes=[2, 3], keepdims=0, name="pool"),
        helper.make_node("ArgMax", ["y"], ["cls"], axis=1, keepdims=0, name="argmax"),
    ]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("cls", TensorProto.INT64, None)],
        initializer=[init("w1", RNG.normal(size=(4, 3, 3, 3)))])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    return onnx.shape_inference.infer_shapes(m, strict_mode=True)


class _Tampered(torch.nn.Module):
    """The imported module with its outputs passed through `change`."""

    def __init__(self, inner: torch.nn.Module, change) -> None:
        super().__init__()
        self.inner, self.change = inner, change

    def forward(self, *args):
        return self.change(self.inner(*args))


def test_integer_outputs_are_compared_exactly_and_skipped_by_the_gradient_check() -> None:
    original = _two_output_model()
    imported = import_model(original.SerializeToString())
    assert imported.output_names == ["y", "cls"]
    assert imported.parity.outputs["cls"] == {"max_abs_err": 0.0, "max_rel_err": 0.0}
    assert imported.parity.gradient_norms["x"] > 0
    off_by_one = _Tampered(imported.module, lambda outs: (outs[0], outs[1] + 1))
    with pytest.raises(ParityError, match="differs from onnxruntime by inf"):
        verify(original, imported.graph, off_by_one, imported.inputs)


def test_a_module_returning_fewer_outputs_than_declared_is_refused() -> None:
    original = _two_output_model()
    imported = import_model(original.SerializeToString())
    first_only = _Tampered(imported.module, lambda outs: outs[0])
    with pytest.raises(ParityError, match=r"returns 1 output\(s\) but the model declares 2 \('y', 'cls'\)"):
        verify(original, imported.graph, first_only, imported.inputs)


def test_a_converted_graph_with_other_output_names_is_refused() -> None:
    original = _two_output_model()
    imported = import_model(original.SerializeToString())
    renamed = helper.make_model(imported.graph.graph)
    renamed.CopyFrom(imported.graph)
    renamed.graph.output[1].name = "c1"
    with pytest.raises(ParityError, match="the converted graph has outputs 'y', 'c1' but the model declares 'y', 'cls'"):
        verify(original, renamed, imported.module, imported.inputs)


def test_a_model_with_only_an_integer_output_imports() -> None:
    m = _two_output_model()
    del m.graph.output[0]
    imported = import_model(m.SerializeToString())
    assert imported.parity.outputs["cls"]["max_rel_err"] == 0.0
    assert imported.parity.gradient_norms == {}


def test_a_module_that_fails_to_run_is_an_import_error_of_the_verify_stage(monkeypatch) -> None:
    from kinetoscope.server.importer import pipeline

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shape '[1, 5]' is invalid for input of size 4")

    monkeypatch.setattr(pipeline, "convert", lambda graph, unwritten=None: Broken())
    with pytest.raises(ParityError) as caught:
        import_model(_three_layer_model().SerializeToString())
    assert caught.value.stage == "verify"
    assert str(caught.value) == ("verify: the torch graph could not be verified against onnxruntime "
                                 "(RuntimeError: shape '[1, 5]' is invalid for input of size 4)")


def _saturating_classifier(logit_gain: float):
    """Conv → global pool → fc → softmax; at ±128 inputs the logits are ~1e4 apart and softmax is one-hot."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw"], ["l"], transB=1, name="fc"),
        helper.make_node("Softmax", ["l"], ["y"], axis=1, name="softmax"),
    ]
    inits = [init("w", rng.normal(size=(8, 3, 3, 3)) * 3), init("fw", rng.normal(size=(5, 8)) * logit_gain)]
    return model(nodes, {"x": [1, 3, 16, 16]}, ["y"], inits)


def test_a_softmax_that_saturates_at_the_default_range_is_checked_at_a_smaller_scale() -> None:
    imported = import_model(_saturating_classifier(10.0).SerializeToString())
    assert imported.parity.gradient_scale < 1.0
    assert imported.parity.gradient_norms["x"] > 0
    assert imported.inputs[0].value_range == (-128.0, 127.0), "the declared range itself is kept"
    small = import_model(_saturating_classifier(10.0).SerializeToString(), inputs=["x=1x3x16x16:image:-1..1"])
    assert small.parity.gradient_scale == 1.0


def test_a_zero_gradient_refusal_names_the_ranges_tried_and_how_to_declare_another() -> None:
    m = model([helper.make_node("Floor", ["x"], ["y"])], {"x": [1, 3, 4, 4]}, ["y"], [])
    with pytest.raises(ParityError) as caught:
        import_model(m.SerializeToString())
    message = str(caught.value)
    assert "declared range -128..127" in message and "-12.8..12.7" in message and "-0.128..0.127" in message
    assert "--input x=1x3x4x4:image:-1..1" in message
    assert "node" not in message, "a zero gradient is the model's, not one op's"


def _video_net(frames: int, size: int, batch: int = 1, flatten_features: int | None = None, same: bool = False):
    """Conv3d (stride 2) → ReLU → global pool, or → Flatten → Gemm over a fixed grid when `flatten_features` is set."""
    rng = np.random.default_rng(4)
    padding = {"auto_pad": "SAME_UPPER"} if same else {"pads": [1] * 6}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[1, 2, 2], name="conv", **padding),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
    ]
    inits = [init("w", rng.normal(size=(4, 3, 3, 3, 3)) * 0.1)]
    if flatten_features is None:
        nodes.append(helper.make_node("GlobalAveragePool", ["r"], ["y"], name="pool"))
    else:
        nodes += [helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
                  helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="fc")]
        inits.append(init("fc", rng.normal(size=(5, flatten_features)) * 0.01))
    return model(nodes, {"x": [batch, 3, frames, size, size]}, ["y"], inits)


def test_a_video_net_is_verified_on_one_smaller_clip() -> None:
    imported = import_model(_video_net(frames=16, size=80, batch=2).SerializeToString())
    assert imported.parity.probe_shapes == {"x": [1, 3, 8, 32, 32]}, "batch 1; time and space cut"
    assert imported.parity.max_rel_err < 1e-5
    assert imported.parity.gradient_probe_shapes == {"x": [1, 3, 4, 16, 16]}, "gradients on a smaller probe still"
    assert imported.parity.gradient_norms["x"] > 0
    assert imported.inputs[0].shape == (2, 3, 16, 80, 80), "the declared shape itself is kept"


def test_the_gradient_probe_is_at_most_an_eighth_of_the_parity_probe_and_agrees_with_it() -> None:
    """A usable gradient on the small probe is one on the parity probe too (an unusable one is measured again
    there before the model is refused: the saturation tests above)."""
    net = _video_net(frames=16, size=80)
    imported = import_model(net.SerializeToString())
    small = imported.parity.gradient_probe_shapes["x"]
    assert np.prod(small) * 8 <= np.prod(imported.parity.probe_shapes["x"])
    x = torch.rand(imported.parity.probe_shapes["x"], requires_grad=True)
    imported.module(x).sum().backward()
    assert float(x.grad.norm()) > 0 and imported.parity.gradient_norms["x"] > 0


def test_a_graph_that_fails_at_the_gradient_probe_measures_gradients_on_the_parity_probe(monkeypatch) -> None:
    import kinetoscope.server.importer.verify as verify_module

    impossible = lambda specs, model=None: [s.with_(shape=(1, 2, 8, 16, 16)) for s in specs]  # noqa: E731 - 2 channels, not 3
    monkeypatch.setattr(verify_module, "gradient_probe_specs", impossible)
    imported = import_model(_video_net(frames=16, size=80).SerializeToString())
    assert imported.parity.gradient_probe_shapes == imported.parity.probe_shapes == {"x": [1, 3, 8, 32, 32]}
    assert imported.parity.gradient_norms["x"] > 0


def test_a_graph_padding_same_is_cut_to_sizes_with_the_same_residues() -> None:
    imported = import_model(_video_net(frames=16, size=80, same=True).SerializeToString())
    assert imported.parity.probe_shapes == {"x": [1, 3, 16, 48, 48]}, "80 ≡ 48 and 16 ≡ 16 modulo 32"
    assert imported.parity.max_rel_err < 1e-5


def test_a_deep_window_keeps_time_where_a_cut_would_leave_it_one_frame_wide() -> None:
    """Three stride-2 convs in time, then a 3-frame conv that reads 2 frames of 16; cut to 8 frames it would
    read one and its outer taps only padding, so time is not cut (space is)."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Conv", [f"h{i}", f"w{i}"], [f"h{i + 1}"], pads=[1] * 6, strides=[2, 1, 1], name=f"conv{i}")
             for i in range(3)]
    nodes.append(helper.make_node("Conv", ["h3", "w3"], ["y"], pads=[1] * 6, name="conv3"))
    inits = [init(f"w{i}", rng.normal(size=(3, 3, 3, 3, 3)) * 0.2) for i in range(4)]
    m = model(nodes, {"h0": [1, 3, 16, 40, 40]}, ["y"], inits)
    imported = import_model(m.SerializeToString())
    assert imported.parity.probe_shapes == {"h0": [1, 3, 16, 32, 32]}, "conv3 reads 2 frames at 16: time stays"
    assert imported.parity.gradient_probe_shapes == {"h0": [1, 3, 8, 16, 16]}, "a gradient needs conv3 to read 1"


def test_a_graph_that_cannot_run_smaller_is_verified_at_its_declared_size() -> None:
    imported = import_model(_video_net(frames=16, size=80, flatten_features=4 * 16 * 40 * 40).SerializeToString())
    assert imported.parity.probe_shapes == {"x": [1, 3, 16, 80, 80]}
    assert imported.parity.gradient_probe_shapes == {"x": [1, 3, 16, 80, 80]}, "one forward pass serves both"
    assert imported.parity.max_rel_err < 1e-5


def test_a_smaller_probe_that_fails_while_running_beside_the_import_is_verified_at_the_declared_size(
        monkeypatch) -> None:
    """onnxruntime's reference runs in another thread while the graph is folded and converted; when it fails at
    the smaller size only then, the original model is parsed again and verified at its declared size."""
    from kinetoscope.server.importer import ort as kinetoscope_ort

    declared = (1, 3, 16, 80, 80)
    run = kinetoscope_ort.WeightFedSession.run
    sizes = []

    def run_declared_only(self, names, feeds):
        sizes.append(feeds["x"].shape)
        if feeds["x"].shape != declared:
            raise RuntimeError("Reshape: the input has 5120 elements, the requested shape 25600")
        return run(self, names, feeds)

    monkeypatch.setattr(kinetoscope_ort.WeightFedSession, "run", run_declared_only)
    imported = import_model(_video_net(frames=16, size=80).SerializeToString())
    assert sizes == [(1, 3, 8, 32, 32), declared]
    assert imported.parity.probe_shapes == {"x": list(declared)} and imported.parity.max_rel_err < 1e-5


def test_a_fixed_reshape_that_fails_only_when_run_smaller_is_verified_at_the_declared_size_quietly(capfd) -> None:
    """onnxruntime builds the smaller session (the reshape's target is data) and fails only while running it; the
    import falls back to the declared size, and onnxruntime's own error line stays off the user's terminal."""
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Reshape", ["c", "flat"], ["y"], name="flatten")]
    inits = [init("w", rng.normal(size=(4, 3, 3, 3)) * 0.1),
             numpy_helper.from_array(np.array([1, 4 * 64 * 64], np.int64), "flat")]
    imported = import_model(model(nodes, {"x": [1, 3, 64, 64]}, ["y"], inits).SerializeToString())
    assert imported.parity.probe_shapes == {"x": [1, 3, 64, 64]} and imported.parity.max_rel_err < 1e-5
    captured = capfd.readouterr()
    assert "onnxruntime" not in captured.err + captured.out, captured.err


def test_a_divergence_on_the_smaller_clip_is_named_at_the_declared_size() -> None:
    original = _video_net(frames=16, size=80)
    imported = import_model(original.SerializeToString())
    conv, _ = tensor_sources(imported.module)["c"]
    with torch.no_grad():
        conv.weight[0, 0, 1, 1, 1] += 1.0
    with pytest.raises(ParityError, match=r"first diverges at layer 'c' \(Conv node 'conv'\)"):
        verify(original, imported.graph, imported.module, imported.inputs)


def test_onnxruntime_takes_big_weights_as_inputs_and_keeps_small_ones() -> None:
    from kinetoscope.server.importer.ort import make_session

    big = RNG.normal(size=(64, 64, 3, 3)).astype(np.float32)  # 147 KiB
    nodes = [helper.make_node("Conv", ["x", "big"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c", "small"], ["y"])]
    m = model(nodes, {"x": [1, 64, 6, 6]}, ["y"], [init("big", big), init("small", RNG.normal(size=(2, 64, 1, 1)))])
    session = make_session(m)
    assert list(session.weights) == ["big"]
    assert [value.name for value in session.get_inputs()] == ["x"]
    x = RNG.normal(size=(1, 64, 6, 6)).astype(np.float32)
    got, want = session.run(["y"], {"x": x})[0], run_ort(m, {"x": x})[0]
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
