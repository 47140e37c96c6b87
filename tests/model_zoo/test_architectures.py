"""The zoo's architectures: published parameter counts, tiny forwards, ONNX export.

Full-size models are only built on the meta device (no memory, no init) to count
parameters; forwards and exports use width-1/16 variants on small inputs.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from torch import nn

from kinetoscope.model_zoo.architectures import (
    ARCHITECTURES,
    C3D,
    I3D,
    BNInception,
    InceptionV3,
    R2Plus1D18,
    ResNet50Stream,
    SpatiotemporalResNet50,
    vgg16_stream,
)
from kinetoscope.model_zoo.architectures.r2plus1d import midplanes

CLASSES = 7


def _params(build) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def _close(measured: int, published: float) -> bool:
    return abs(measured - published) <= 0.01 * published


# ---- parameter counts against the published architectures ----


def test_vgg16_stream_matches_vgg16() -> None:
    def stream_with_classifier() -> nn.Module:
        return nn.Sequential(vgg16_stream(3), nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000))

    measured = _params(stream_with_classifier)
    assert measured == _params(lambda: torchvision.models.vgg16(weights=None)) == 138_357_544


def test_resnet50_streams_match_resnet50() -> None:
    reference = _params(lambda: torchvision.models.resnet50(weights=None))
    assert _params(lambda: ResNet50Stream(3, 1000)) == reference == 25_557_032
    assert _close(reference, 25.56e6)
    # the motion stream differs only in conv1's 2L = 20 input channels
    two_streams = _params(lambda: SpatiotemporalResNet50(num_classes=1000, flow_fields=10))
    assert two_streams == 2 * reference + (20 - 3) * 64 * 7 * 7


def test_bn_inception_matches_published_count() -> None:
    measured = _params(lambda: BNInception(3, 1000))
    assert measured == 11_295_240  # imgclsmob / pytorchcv BN-Inception, Caffe layout with conv biases
    assert _close(measured, 11.3e6)


@pytest.mark.parametrize("aux", [False, True])
def test_inception_v3_matches_torchvision(aux: bool) -> None:
    reference = _params(lambda: torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=False))
    assert _params(lambda: InceptionV3(3, 1000, aux_logits=aux)) == reference
    if not aux:
        assert reference == 23_834_568 and _close(reference, 23.8e6)


def test_c3d_matches_arithmetic() -> None:
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    conv_params = sum(27 * cin * cout + cout for cin, cout in convs)
    fc67 = (8192 * 4096 + 4096) + (4096 * 4096 + 4096)
    assert conv_params == 27_655_936
    assert _params(lambda: C3D(487)) == conv_params + fc67 + 4096 * 487 + 487 == 79_991_015  # Sports-1M
    ucf101 = _params(lambda: C3D(101))
    assert ucf101 == 78_409_573 and _close(ucf101, 78.4e6)  # the often quoted 78.4 M: a 101-way fc8
    with torch.device("meta"):
        assert C3D(487).fc6.in_features == 512 * 1 * 4 * 4


def test_i3d_matches_published_count() -> None:
    measured = _params(lambda: I3D(400))
    logits = 1024 * 400 + 400
    assert measured == 12_697_264
    assert _close(measured - logits, 12.3e6)  # backbone; Carreira & Zisserman, Table 1: 12M


def test_r2plus1d_18_matches_torchvision() -> None:
    reference = _params(lambda: torchvision.models.video.r2plus1d_18(weights=None, num_classes=400))
    assert _params(lambda: R2Plus1D18(400)) == reference == 31_505_325


def test_r2plus1d_midplanes_follow_the_formula() -> None:
    assert [midplanes(64, 64), midplanes(64, 128), midplanes(128, 256), midplanes(256, 512)] == [144, 230, 460, 921]
    assert midplanes(128, 128) == 288


# ---- geometry ----


def test_i3d_same_padding_geometry_at_full_size() -> None:
    with torch.device("meta"):
        net = I3D(400, frames=64, size=224)
    shapes = {name: getattr(net, name).out_shape for name in net.layer_names if hasattr(getattr(net, name), "out_shape")}
    assert shapes["conv3d_1a_7x7"] == (32, 112, 112)
    assert shapes["maxpool3d_2a_3x3"] == (32, 56, 56)
    assert shapes["maxpool3d_3a_3x3"] == (32, 28, 28)
    assert shapes["maxpool3d_4a_3x3"] == (16, 14, 14)
    assert shapes["maxpool3d_5a_2x2"] == (8, 7, 7)
    assert net.avgpool.kernel_size == (2, 7, 7)
    assert net.conv3d_1a_7x7.pad.padding == (2, 3, 2, 3, 2, 3)  # TF SAME: the odd row at the end


def test_motion_reaches_appearance_through_residual_connections() -> None:
    torch.manual_seed(0)
    net = SpatiotemporalResNet50(num_classes=CLASSES, flow_fields=2, width=1 / 16).eval()
    nn.init.zeros_(net.flow.fc.weight)
    nn.init.zeros_(net.flow.fc.bias)  # the output is now the appearance stream's alone
    rgb = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = net(rgb, torch.randn(1, 4, 32, 32))
        b = net(rgb, torch.randn(1, 4, 32, 32))
    assert not torch.allclose(a, b)


def test_registry_shapes() -> None:
    assert set(ARCHITECTURES) == {
        "vgg16_two_stream", "resnet50_st", "bn_inception_tsn", "inception_v3_two_stream", "c3d", "i3d", "r2plus1d_18",
    }
    assert ARCHITECTURES["vgg16_two_stream"].input_shapes() == {"rgb": (3, 224, 224), "flow": (20, 224, 224)}
    assert ARCHITECTURES["bn_inception_tsn"].input_shapes(frames=5) == {"rgb": (3, 224, 224), "flow": (10, 224, 224)}
    assert ARCHITECTURES["i3d"].input_shapes() == {"video": (3, 64, 224, 224)}
    assert ARCHITECTURES["c3d"].input_shapes(16, 112) == {"video": (3, 16, 112, 112)}
    for info in ARCHITECTURES.values():
        assert tuple(info.input_shapes()) == info.input_names == tuple(info.input_kinds)


# ---- tiny variants: forward and ONNX ----


@cache
def _tiny(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    info = ARCHITECTURES[name]
    torch.manual_seed(0)
    net = info.build(CLASSES, info.small_frames, info.small_size, 1 / 16).eval()
    generator = torch.Generator().manual_seed(1)
    inputs = tuple(torch.randn(x.shape, generator=generator) for x in info.example_inputs(info.small_frames, info.small_size))
    return net, inputs


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_tiny_forward_gives_logits(name: str) -> None:
    net, inputs = _tiny(name)
    with torch.no_grad():
        logits = net(*inputs)
    assert logits.shape == (1, CLASSES) and torch.isfinite(logits).all()


@pytest.mark.filterwarnings("ignore:Constant folding")  # I3D's asymmetric SAME pads export as a small Pad subgraph
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_tiny_exports_to_onnx(name: str) -> None:
    info = ARCHITECTURES[name]
    net, inputs = _tiny(name)
    buffer = io.BytesIO()
    torch.onnx.export(net, inputs, buffer, input_names=list(info.input_names), output_names=[info.output_name], opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {n: x.numpy() for n, x in zip(info.input_names, inputs)})
    assert out.shape == (1, CLASSES) and np.isfinite(out).all()
    with torch.no_grad():
        np.testing.assert_allclose(out, net(*inputs).numpy(), rtol=1e-3, atol=1e-4)


def test_small_two_stream_flow_filters_start_equal_across_fields() -> None:
    from kinetoscope.model_zoo.architectures.small import SmallTwoStream

    torch.manual_seed(0)
    weight = SmallTwoStream(num_classes=CLASSES, flow_fields=5).flow.conv1.conv.weight  # [16, 2·5, 3, 3]
    fields = weight.detach().reshape(weight.shape[0], 5, 2, *weight.shape[2:])
    assert torch.equal(fields, fields[:, :1].expand_as(fields))
    assert fields[:, 0, 0].std() > 0 and not torch.equal(fields[:, 0, 0], fields[:, 0, 1])  # x and y taps differ


def test_small_3d_filters_start_constant_over_time() -> None:
    from kinetoscope.model_zoo.architectures.small import Small3D

    torch.manual_seed(0)
    model = Small3D(num_classes=CLASSES)
    for block in (model.conv1, model.conv2, model.conv3):
        weight = block.conv.weight.detach()  # [out, in, T, H, W]
        assert torch.equal(weight, weight[:, :, :1].expand_as(weight))
        assert weight.std() > 0
