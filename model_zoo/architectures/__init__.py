"""The paper's architectures in plain torch."""

from .vgg import TwoStreamVGG16, vgg16_stream

__all__ = ["TwoStreamVGG16", "vgg16_stream"]
