"""Configurable bounds an import checks before allocating anything big."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1 << 30


@dataclass(frozen=True)
class ImportLimits:
    """Upper bounds on what a model may ask of the importer.

    The defaults admit any real video ConvNet (a two-stream ResNet-152 is ~0.5 GiB)
    while refusing files and graphs that could only exhaust memory.
    """

    max_model_bytes: int = 8 * GiB
    """Model file plus its external-data files."""
    max_tensor_bytes: int = 2 * GiB
    """Any one tensor: an initializer or an intermediate value, by its inferred shape."""
    max_total_activation_bytes: int = 16 * GiB
    """All intermediate values of one forward pass at batch 1 together."""
    max_nodes: int = 200_000
    max_rank: int = 8
    max_dim: int = 1 << 24
