"""Modern video ConvNets as real exporters write them import with parity, and their catalog follows them.

Each net is tiny (8–16 channels, 8 frames, 32 px) so the default run stays fast. What they
exercise: ConvNeXt's depthwise conv, LayerNormalization over channels and Gelu-20; X3D's
squeeze-excitation, Swish and HardSwish through the dynamo exporter at opset 23; a non-local
block's attention (MatMul, Softmax), after which a unit sees the whole input; GroupNorm as
GroupNormalization-21 and as the Reshape → InstanceNormalization → Reshape that older opsets
get; and a two-stream net with Upsample-9 and a tf-style SAME ConvTranspose.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from kinetoscope.server.importer import InputSpec, import_model

_CLIP = (1, 3, 8, 32, 32)


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _export(net: nn.Module, *, opset: int, dynamo: bool, shape: tuple[int, ...] = _CLIP) -> bytes:
    torch.manual_seed(1)
    example = (torch.randn(shape),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(net.eval(), example, input_names=["video"], output_names=["y"],
                                        opset_version=opset, dynamo=True, verbose=False)
            return program.model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(net.eval(), example, buffer, input_names=["video"], output_names=["y"], opset_version=opset,
                          dynamo=False)
        return buffer.getvalue()


def _ops(data: bytes) -> set[str]:
    return {node.op_type for node in onnx.load_from_string(data).graph.node}


def _conv_layers(imported) -> list:
    return [layer for layer in imported.catalog if layer.op_type == "Conv"]


class ConvNeXtBlock3d(nn.Module):
    """Patchify stem, then depthwise 3×7×7 conv → LayerNorm over channels (channels last) → MLP with GELU."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv3d(3, channels, (1, 4, 4), stride=(1, 4, 4))
        self.depthwise = nn.Conv3d(channels, channels, (3, 7, 7), padding=(1, 3, 3), groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.expand, self.reduce = nn.Linear(channels, 4 * channels), nn.Linear(4 * channels, channels)
        self.head = nn.Conv3d(channels, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.depthwise(x).permute(0, 2, 3, 4, 1)
        y = self.reduce(F.gelu(self.expand(self.norm(y)))).permute(0, 4, 1, 2, 3)
        return self.head(x + y)


def test_convnext_block_at_opset_20() -> None:
    data = _export(ConvNeXtBlock3d(), opset=20, dynamo=False)
    assert {"LayerNormalization", "Gelu"} <= _ops(data)
    assert onnx.load_from_string(data).opset_import[0].version == 20
    imported = import_model(data)
    assert imported.parity.max_rel_err <= 1e-4
    head = imported.layer("y")
    assert head.axes == "NCTHW" and head.shape == (1, 8, 8, 8, 8)
    # stem 4 px; depthwise 7 taps at stride 4 → 4 + 6·4 = 28 px, 3 frames; the MLP is pointwise
    assert head.receptive_field["video"] == {"T": 3.0, "H": 28.0, "W": 28.0}
    norm = next(layer for layer in imported.catalog if layer.op_type == "LayerNormalization")
    assert norm.axes == "NTHWC" and norm.channels == 16


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.squeeze, self.excite = nn.Conv3d(channels, channels // reduction, 1), nn.Conv3d(channels // reduction,
                                                                                            channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(F.adaptive_avg_pool3d(x, 1)))))
        return x * gate


class X3DBlock(nn.Module):
    """Expand 1×1 → depthwise 3×3×3 → squeeze-excitation → Swish → project 1×1, residual; HardSwish head."""

    def __init__(self, channels: int = 8, expanded: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv3d(3, channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.expand, self.bn1 = nn.Conv3d(channels, expanded, 1, bias=False), nn.BatchNorm3d(expanded)
        self.depthwise = nn.Conv3d(expanded, expanded, 3, padding=1, groups=expanded, bias=False)
        self.bn2 = nn.BatchNorm3d(expanded)
        self.se = SqueezeExcite(expanded)
        self.project, self.bn3 = nn.Conv3d(expanded, channels, 1, bias=False), nn.BatchNorm3d(channels)
        self.head = nn.Conv3d(channels, 16, 1)
        for bn in (self.bn1, self.bn2, self.bn3):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.se(self.bn2(self.depthwise(F.relu(self.bn1(self.expand(x))))))
        y = self.bn3(self.project(y * torch.sigmoid(y)))
        return F.hardswish(self.head(x + y))


def test_x3d_block_through_the_dynamo_exporter_at_opset_23() -> None:
    data = _export(X3DBlock(), opset=23, dynamo=True)
    assert onnx.load_from_string(data).opset_import[0].version == 23
    assert {"ReduceMean", "Sigmoid", "Mul", "HardSwish"} <= _ops(data)
    imported = import_model(data)
    assert imported.parity.max_rel_err <= 1e-4
    assert imported.bn_remaining == 0
    convs = _conv_layers(imported)
    assert len(convs) == 7  # stem, expand, depthwise, squeeze, excite, project, head
    depthwise = convs[2]
    assert depthwise.receptive_field["video"] == {"T": 3.0, "H": 7.0, "W": 7.0}
    # the excitation gate is pooled over the whole clip: from the gated map on, a unit sees all of it
    for layer in imported.catalog[imported.catalog.index(depthwise) + 1:]:
        if layer.shape[2:] == (8, 16, 16):
            assert layer.receptive_field["video"] == {"T": 8.0, "H": 32.0, "W": 32.0}, layer.name
    assert imported.layer("y").op_type == "HardSwish"


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block: softmax(θᵀφ) g, projected back and added to the input."""

    def __init__(self, channels: int, inner: int) -> None:
        super().__init__()
        self.theta, self.phi, self.g = (nn.Conv3d(channels, inner, 1) for _ in range(3))
        self.out = nn.Conv3d(inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)
        attention = torch.softmax(theta @ self.phi(x).flatten(2), dim=-1)
        y = (attention @ self.g(x).flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, t, h, w)
        return x + self.out(y)


class ResNet3dNonLocal(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv3d(3, channels, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3))
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.nonlocal_block = NonLocal(channels, channels // 2)
        self.conv3 = nn.Conv3d(channels, 2 * channels, 3, stride=2, padding=1)
        self.conv4 = nn.Conv3d(2 * channels, 2 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.stem(x)))
        x = F.relu(x + self.conv2(F.relu(self.conv1(x))))
        x = self.nonlocal_block(x)
        return self.conv4(F.relu(self.conv3(x)))


def test_resnet3d_with_a_non_local_block_sees_the_whole_input_after_attention() -> None:
    data = _export(ResNet3dNonLocal(), opset=17, dynamo=False)
    assert {"MatMul", "Softmax"} <= _ops(data)
    imported = import_model(data)
    assert imported.parity.max_rel_err <= 1e-4
    before = imported.layer("/conv2/Conv_output_0")
    assert before.receptive_field["video"] == {"T": 7.0, "H": 27.0, "W": 27.0}  # 7 → pool 11 → +8 → +8
    whole = {"T": 8.0, "H": 32.0, "W": 32.0}
    for name in ("/nonlocal_block/out/Conv_output_0", "/nonlocal_block/Add_output_0", "/conv3/Conv_output_0", "y"):
        layer = imported.layer(name)
        assert layer.axes == "NCTHW", name
        assert layer.receptive_field["video"] == whole, name
    assert imported.layer("y").stride["video"] == {"T": 2.0, "H": 8.0, "W": 8.0}
    positions = 8 * 8 * 8
    assert not [l.name for l in imported.catalog if l.shape[-2:] == (positions, positions)], \
        "attention scores index positions, not channels: not a layer"


class GroupNormResNet3d(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv3d(3, channels, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2))
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv3d(channels, channels, 3, stride=2, padding=1)
        self.norms = nn.ModuleList(nn.GroupNorm(4, channels) for _ in range(3))
        for norm in self.norms:
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norms[0](self.stem(x)))
        y = F.relu(self.norms[1](self.conv1(x)))
        x = F.relu(x + self.norms[2](self.conv2(y)))
        return self.conv3(x)


# conv: (T field, H field) — 3×5 stem, then three 3×3×3 convs at H stride 2 (the last strided)
_GROUPNORM_FIELDS = [(3.0, 5.0), (5.0, 9.0), (7.0, 13.0), (9.0, 17.0)]


@pytest.mark.parametrize("opset,decomposed", [(21, False), (18, True)], ids=["GroupNormalization-21", "decomposed"])
def test_groupnorm_resnet3d(opset: int, decomposed: bool) -> None:
    """At opset 21 the dynamo exporter writes GroupNormalization; at 18 Reshape → InstanceNormalization → Reshape.
    Either way every conv and norm output after the first GroupNorm is a layer with its own field."""
    data = _export(GroupNormResNet3d(), opset=opset, dynamo=True)
    ops = _ops(data)
    assert ("InstanceNormalization" in ops) is decomposed and ("GroupNormalization" in ops) is not decomposed
    imported = import_model(data)
    assert imported.parity.max_rel_err <= 1e-4
    convs = _conv_layers(imported)
    assert [(c.receptive_field["video"]["T"], c.receptive_field["video"]["H"]) for c in convs] == _GROUPNORM_FIELDS
    assert all(c.axes == "NCTHW" for c in convs)
    relus = [layer for layer in imported.catalog if layer.op_type == "Relu"]
    assert len(relus) == 3 and all(r.axes == "NCTHW" and r.channels == 16 for r in relus)
    assert relus[-1].receptive_field["video"] == {"T": 7.0, "H": 13.0, "W": 13.0}


def _two_stream(tf_style: str) -> onnx.ModelProto:
    """rgb: conv stride 2 → Upsample ×2 (opset 9); flow: conv stride 2 → ConvTranspose ×2 with SAME padding
    (auto_pad SAME_UPPER or output_shape, as tf2onnx writes); fused by Concat → 3×3 conv."""
    rng = np.random.default_rng(7)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    transpose_attrs = {"auto_pad": "SAME_UPPER"} if tf_style == "auto_pad" else {"output_shape": [32, 32]}
    nodes = [
        helper.make_node("Conv", ["rgb", "w_rgb", "b_rgb"], ["rgb1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="rgb_conv"),
        helper.make_node("Relu", ["rgb1"], ["rgb2"], name="rgb_relu"),
        helper.make_node("Upsample", ["rgb2", "scales"], ["rgb3"], mode="nearest", name="rgb_upsample"),
        helper.make_node("Conv", ["flow", "w_flow", "b_flow"], ["flow1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="flow_conv"),
        helper.make_node("Relu", ["flow1"], ["flow2"], name="flow_relu"),
        helper.make_node("ConvTranspose", ["flow2", "w_up", "b_up"], ["flow3"], kernel_shape=[4, 4], strides=[2, 2],
                         name="flow_up", **transpose_attrs),
        helper.make_node("Concat", ["rgb3", "flow3"], ["fused"], axis=1, name="fusion"),
        helper.make_node("Conv", ["fused", "w_fuse"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="fuse_conv"),
    ]
    inits = [weight("w_rgb", 8, 3, 3, 3), weight("b_rgb", 8), weight("w_flow", 8, 10, 3, 3), weight("b_flow", 8),
             weight("w_up", 8, 8, 4, 4), weight("b_up", 8), weight("w_fuse", 8, 16, 3, 3),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    graph = helper.make_graph(nodes, "two_stream", [
        helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, 32, 32]),
        helper.make_tensor_value_info("flow", TensorProto.FLOAT, [1, 10, 32, 32]),
    ], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=4)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("tf_style", ["auto_pad", "output_shape"])
def test_two_stream_with_upsample_and_a_same_conv_transpose(tf_style: str) -> None:
    model = _two_stream(tf_style)
    imported = import_model(model.SerializeToString(), inputs=[
        InputSpec("rgb", (1, 3, 32, 32), kind="image", value_range=(-1.0, 1.0)),
        InputSpec("flow", (1, 10, 32, 32), kind="stacked_flow", value_range=(-20.0, 20.0)),
    ])
    assert imported.parity.max_rel_err <= 1e-4
    upsampled, transposed, fused = (imported.layer(n) for n in ("rgb_upsample", "flow_up", "fuse_conv"))
    assert upsampled.shape == transposed.shape == (1, 8, 32, 32)
    assert upsampled.streams == "appearance" and transposed.streams == "motion" and fused.streams == "fusion"
    assert upsampled.stride["rgb"]["H"] == 1.0 and upsampled.receptive_field["rgb"]["H"] == 3.0
    # conv 3 at stride 2, then a 4-tap transpose at stride 2: 3 + (ceil(4/2) − 1)·2 = 5, back to stride 1
    assert transposed.receptive_field["flow"]["H"] == 5.0 and transposed.stride["flow"]["H"] == 1.0
    assert transposed.receptive_field["flow"]["T"] == 5.0  # the 5 stacked flow fields
    assert fused.receptive_field == {"rgb": {"H": 5.0, "W": 5.0}, "flow": {"T": 5.0, "H": 7.0, "W": 7.0}}


@pytest.mark.slow
def test_non_local_field_stays_at_the_input_extent_at_112_px() -> None:
    """At 112 px (3,136 positions attending to each other) the field after the block is the input, 112 px, and
    the strided convs after it leave it there; merely widening at the flattening let it grow to 807 px."""
    data = _export(ResNet3dNonLocal(), opset=17, dynamo=False, shape=(1, 3, 8, 112, 112))
    imported = import_model(data)
    assert imported.parity.max_rel_err <= 1e-4
    assert imported.layer("y").receptive_field["video"] == {"T": 8.0, "H": 112.0, "W": 112.0}
