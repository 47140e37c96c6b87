"""Export zoo architectures to ONNX with readable input/output names and BatchNorm kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from .architectures import ARCHITECTURES, ZooSizeError
from .names import name_tensors_after_modules

__all__ = ["ZooSizeError", "export_model", "zoo_listing"]


def export_model(
    name: str,
    path: Path,
    *,
    classes: int | None = None,
    frames: int | None = None,
    size: int | None = None,
    width: float = 1.0,
    seed: int = 0,
    opset: int = 17,
) -> Path:
    """Build `name` with random weights (seeded) and write it to `path` as ONNX.

    BatchNorm stays a separate node (TrainingMode.PRESERVE on an eval-mode module), so
    the importer's folding is what users see; `frames` is L flow fields for two-stream
    models and the clip length for 3D ones. An input the architecture's geometry cannot
    take raises ZooSizeError (a ValueError naming the minimum) before anything is built.
    """
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ARCHITECTURES)}")
    info = ARCHITECTURES[name]
    frames = info.frames if frames is None else frames
    size = info.size if size is None else size
    classes = info.num_classes if classes is None else classes
    info.check_size(frames, size, classes, width)
    torch.manual_seed(seed)
    net = info.build(classes, frames, size, width).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, info.example_inputs(frames, size), str(path), input_names=list(info.input_names),
            output_names=[info.output_name], opset_version=opset, dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    proto = onnx.load(str(path))
    name_tensors_after_modules(proto)
    onnx.save(proto, str(path))
    return Path(path)


def zoo_listing() -> list[dict]:
    """One entry per architecture: its inputs at the published setting and the least frames and size it takes."""
    return [
        {
            "name": info.name,
            "description": info.description,
            "inputs": [
                {"name": n, "shape": [1, *info.input_shapes()[n]], "kind": info.input_kinds[n]} for n in info.input_names
            ],
            "frames": info.frames,
            "size": info.size,
            "classes": info.num_classes,
            "min_frames": info.limits.min_frames,
            "min_size": info.limits.min_size,
        }
        for info in ARCHITECTURES.values()
    ]
