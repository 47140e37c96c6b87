"""The paper's architectures in plain torch, and a registry that builds any of them by name.

`ARCHITECTURES[name].build(num_classes, frames, size, width)` returns a module whose
forward takes the inputs listed in `input_names`, shaped per `input_shapes(frames, size)`
(batch dimension excluded), and returns [batch, num_classes] logits. `frames` is the
number L of stacked flow fields (2L channels) for the two-stream 2D networks and the
clip length T for the 3D ones, so an exporter can drive every architecture the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .bn_inception import BNInception, TSNBNInception
from .c3d import C3D
from .i3d import I3D
from .inception_v3 import InceptionV3, TwoStreamInceptionV3
from .limits import InputLimits, ZooSizeError, check_model_args
from .r2plus1d import R2Plus1D18
from .resnet_st import ResNet50Stream, SpatiotemporalResNet50
from .vgg import TwoStreamVGG16, vgg16_stream

Shapes = dict[str, tuple[int, ...]]


def _two_stream(frames: int, size: int) -> Shapes:
    return {"rgb": (3, size, size), "flow": (2 * frames, size, size)}


def _clip(frames: int, size: int) -> Shapes:
    return {"video": (3, frames, size, size)}


@dataclass(frozen=True)
class ArchitectureInfo:
    """How to build one architecture and feed it.

    `frames`, `size`, `num_classes` are the published setting; `small_frames` and
    `small_size` are a small input its geometry still admits (for width-scaled test
    variants); `limits` holds the least frames and size it admits at all.
    `input_kinds` uses the importer's vocabulary (image, stacked_flow, video).
    """

    name: str
    description: str
    build: Callable[[int, int, int, float], nn.Module]  # (num_classes, frames, size, width)
    input_names: tuple[str, ...]
    input_kinds: dict[str, str]
    shapes: Callable[[int, int], Shapes]
    frames: int
    size: int
    num_classes: int
    small_frames: int
    small_size: int
    limits: InputLimits = InputLimits()
    output_name: str = "logits"

    def check_size(self, frames: int, size: int, classes: int = 1, width: float = 1.0) -> None:
        """Raise ZooSizeError naming each minimum this model's geometry needs and the request misses
        (and a class count below 1 or a width not above 0).

        Pure arithmetic: call it before `build`, which would fail deep inside torch instead.
        """
        check_model_args(self.name, self.limits, frames, size, classes, width)

    def input_shapes(self, frames: int | None = None, size: int | None = None) -> Shapes:
        """Per-input shape without the batch dimension, in `input_names` order."""
        return self.shapes(self.frames if frames is None else frames, self.size if size is None else size)

    def example_inputs(self, frames: int | None = None, size: int | None = None, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Zero tensors in forward-argument order, e.g. for torch.onnx.export."""
        shapes = self.input_shapes(frames, size)
        return tuple(torch.zeros(batch, *shapes[name]) for name in self.input_names)


_TWO_STREAM = {"input_names": ("rgb", "flow"), "input_kinds": {"rgb": "image", "flow": "stacked_flow"}, "shapes": _two_stream}
_CLIP = {"input_names": ("video",), "input_kinds": {"video": "video"}, "shapes": _clip}

ARCHITECTURES: dict[str, ArchitectureInfo] = {info.name: info for info in [
    ArchitectureInfo(
        "vgg16_two_stream",
        "Two-stream VGG-16 with conv fusion after conv5_3 (Feichtenhofer, Pinz & Zisserman, CVPR 2016).",
        lambda c, f, s, w: TwoStreamVGG16(num_classes=c, flow_fields=f, width=w, size=s),
        frames=10, size=224, num_classes=101, small_frames=2, small_size=32,
        limits=InputLimits(min_size=32, size_reason="pool1–pool5 halve the image 5 times"), **_TWO_STREAM),
    ArchitectureInfo(
        "resnet50_st",
        "Spatiotemporal ResNet-50: motion→appearance residual connections, averaged scores (Feichtenhofer et al., NIPS 2016).",
        lambda c, f, s, w: SpatiotemporalResNet50(num_classes=c, flow_fields=f, width=w),
        frames=10, size=224, num_classes=101, small_frames=2, small_size=32,
        limits=InputLimits(min_size=5, size_reason="pool1's 3×3 window needs 3 pixels after conv1's stride 2"),
        **_TWO_STREAM),
    ArchitectureInfo(
        "bn_inception_tsn",
        "TSN two-stream BN-Inception, late fusion by averaging (Wang et al., ECCV 2016; Ioffe & Szegedy 2015).",
        lambda c, f, s, w: TSNBNInception(num_classes=c, flow_fields=f, width=w, size=s),
        frames=5, size=224, num_classes=101, small_frames=2, small_size=64,
        limits=InputLimits(min_size=11, size_reason="pool1 and pool2, 3×3 with stride 2, need 3 pixels each"),
        **_TWO_STREAM),
    ArchitectureInfo(
        "inception_v3_two_stream",
        "Two-stream Inception-v3 without auxiliary head, late fusion by averaging (Szegedy et al., CVPR 2016).",
        lambda c, f, s, w: TwoStreamInceptionV3(num_classes=c, flow_fields=f, width=w),
        frames=10, size=299, num_classes=101, small_frames=2, small_size=75,
        limits=InputLimits(min_size=75, size_reason="its unpadded stem and grid reductions leave mixed_7a 3 pixels"),
        **_TWO_STREAM),
    ArchitectureInfo(
        "c3d",
        "C3D: eight 3×3×3 convolutions, fc6/fc7 4096 (Tran et al., ICCV 2015).",
        lambda c, f, s, w: C3D(num_classes=c, frames=f, size=s, width=w),
        frames=16, size=112, num_classes=487, small_frames=16, small_size=32,
        limits=InputLimits(
            min_frames=9, frames_reason="pool2–pool5 halve time 4 times and pool5 needs 2 steps",
            min_size=17, size_reason="pool1–pool5 halve the image 5 times and pool5 needs 2 pixels"),
        **_CLIP),
    ArchitectureInfo(
        "i3d",
        "I3D: Inflated Inception-v1 with BN (Carreira & Zisserman, CVPR 2017).",
        lambda c, f, s, w: I3D(num_classes=c, frames=f, size=s, width=w),
        frames=64, size=224, num_classes=400, small_frames=8, small_size=32, **_CLIP),
    ArchitectureInfo(
        "r2plus1d_18",
        "R(2+1)D-18: factorized spatial and temporal convolutions (Tran et al., CVPR 2018).",
        lambda c, f, s, w: R2Plus1D18(num_classes=c, width=w),
        frames=16, size=112, num_classes=400, small_frames=4, small_size=32, **_CLIP),
]}

__all__ = [
    "ARCHITECTURES",
    "ArchitectureInfo",
    "BNInception",
    "C3D",
    "I3D",
    "InceptionV3",
    "InputLimits",
    "R2Plus1D18",
    "ResNet50Stream",
    "SpatiotemporalResNet50",
    "TSNBNInception",
    "TwoStreamInceptionV3",
    "TwoStreamVGG16",
    "ZooSizeError",
    "vgg16_stream",
]
