"""Export zoo architectures to ONNX with readable input/output names."""

from __future__ import annotations

from pathlib import Path

import torch

from .architectures import TwoStreamVGG16


def export_model(name: str, path: Path, *, classes: int = 101, width: float = 1.0, size: int = 224, flow_fields: int = 10, seed: int = 0) -> Path:
    if name != "vgg16_two_stream":
        raise KeyError(f"unknown zoo model {name!r}; known: vgg16_two_stream")
    torch.manual_seed(seed)
    net = TwoStreamVGG16(num_classes=classes, flow_fields=flow_fields, width=width, size=size).eval()
    args = (torch.zeros(1, 3, size, size), torch.zeros(1, 2 * flow_fields, size, size))
    torch.onnx.export(net, args, str(path), input_names=["rgb", "flow"], output_names=["logits"], opset_version=17, dynamo=False)
    return path
