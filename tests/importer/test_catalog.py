"""Layer catalog: receptive field, stride and stream membership, against the paper's Table 1."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from kinetoscope.model_zoo.architectures import TwoStreamVGG16
from kinetoscope.server.importer import import_model

TABLE_1 = {  # layer: (receptive field, stride), Feichtenhofer et al., Table 1
    "conv1_1": (3, 1), "conv1_2": (5, 1), "pool1": (6, 2), "conv2_1": (10, 2), "conv2_2": (14, 2),
    "pool2": (16, 4), "conv3_1": (24, 4), "conv3_2": (32, 4), "conv3_3": (40, 4), "pool3": (44, 8),
    "conv4_1": (60, 8), "conv4_2": (76, 8), "conv4_3": (92, 8), "pool4": (100, 16), "conv5_1": (132, 16),
    "conv5_2": (164, 16), "conv5_3": (196, 16),
}


def _export(module: nn.Module, args: tuple, names: list[str]) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(module.eval(), args, buffer, input_names=names, output_names=["logits"], opset_version=17, dynamo=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def vgg():
    net = TwoStreamVGG16(num_classes=7, flow_fields=10, width=1 / 16, size=224)
    data = _export(net, (torch.randn(1, 3, 224, 224), torch.randn(1, 20, 224, 224)), ["rgb", "flow"])
    return import_model(data)


@pytest.mark.parametrize("stream,input_name", [("rgb", "rgb"), ("flow", "flow")])
def test_vgg16_receptive_fields_match_table_1(vgg, stream: str, input_name: str) -> None:
    for layer_name, (rf, stride) in TABLE_1.items():
        op = "MaxPool" if layer_name.startswith("pool") else "Conv"
        layer = vgg.layer(f"/{stream}/{layer_name}/{op}")
        assert layer.receptive_field[input_name]["H"] == rf, layer_name
        assert layer.receptive_field[input_name]["W"] == rf, layer_name
        assert layer.stride[input_name]["H"] == stride, layer_name
        assert layer.inputs == (input_name,)
        assert layer.streams == ("appearance" if stream == "rgb" else "motion")


def test_vgg16_fusion_layers_see_both_streams(vgg) -> None:
    fusion = vgg.layer("/conv5_fusion/Conv")
    assert fusion.inputs == ("rgb", "flow") and fusion.streams == "fusion"
    assert fusion.receptive_field["flow"]["T"] == 10, "all 10 stacked flow fields feed conv5_fusion"
    pool5 = vgg.layer("/pool5/MaxPool")
    assert (pool5.receptive_field["rgb"]["H"], pool5.stride["rgb"]["H"]) == (212, 32)
    fc6 = vgg.layer("/fc6/Gemm")
    assert fc6.receptive_field["rgb"]["H"] == 404, "fc6 covers pool5's 7x7 grid: 212 + 6*32"
    logits = vgg.layer("logits")
    assert logits.channels == 7 and logits.shape == (1, 7)


def test_vgg16_catalog_lists_every_conv_pool_and_fc(vgg) -> None:
    ops = [layer.op_type for layer in vgg.catalog]
    assert ops.count("Conv") == 2 * 13 + 1
    assert ops.count("MaxPool") == 2 * 4 + 1
    assert ops.count("Gemm") == 3


class _C3DLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1)
        self.pool1 = nn.MaxPool3d((1, 2, 2))
        self.conv2 = nn.Conv3d(4, 4, 3, padding=1)
        self.pool2 = nn.MaxPool3d(2)
        self.conv3 = nn.Conv3d(4, 4, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))

    def forward(self, video):
        return self.conv3(self.pool2(self.conv2(self.pool1(self.conv1(video)))))


def test_receptive_field_along_time_for_a_3d_net() -> None:
    imported = import_model(_export(_C3DLike(), (torch.randn(1, 3, 8, 16, 16),), ["video"]))
    assert imported.inputs[0].kind == "video" and imported.inputs[0].layout == "NCTHW"
    expected = {  # node: (T rf, T stride, H rf, H stride)
        "/conv1/Conv": (3, 1, 3, 1),
        "/pool1/MaxPool": (3, 1, 4, 2),
        "/conv2/Conv": (5, 1, 8, 2),
        "/pool2/MaxPool": (6, 2, 10, 4),
        "/conv3/Conv": (10, 4, 10, 4),
    }
    for node, (t_rf, t_stride, h_rf, h_stride) in expected.items():
        layer = imported.layer(node)
        rf, stride = layer.receptive_field["video"], layer.stride["video"]
        assert (rf["T"], stride["T"], rf["H"], stride["H"]) == (t_rf, t_stride, h_rf, h_stride), node
        assert layer.axes == "NCTHW"
