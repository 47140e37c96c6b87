"""A corpus of small ONNX video ConvNets, as bytes, for importer and folding tests.

Torch families are exported by both torch exporters with BN preserved; handmade
graphs cover what other exporters write. ``ALL`` maps entry names to builders;
``get`` and ``corpus`` build lazily and at most once per process.
"""

from __future__ import annotations

import functools
from typing import Callable

from .common import CorpusModel, count_bn, count_foldable_bn, op_counts, random_bn_stats
from .handmade import builders as _handmade_builders

__all__ = [
    "ALL",
    "TORCH_VARIANTS",
    "CorpusModel",
    "corpus",
    "count_bn",
    "count_foldable_bn",
    "get",
    "op_counts",
    "random_bn_stats",
]

#: Export variants per torch family. Every family gets the three TorchScript opsets and
#: dynamo's default; a few add dynamo at opset 18 or with its optimizer on.
TORCH_VARIANTS: dict[str, tuple[str, ...]] = {
    "two_stream_2d": ("ts11", "ts13", "ts17", "dynamo"),
    "resnet3d": ("ts11", "ts13", "ts17", "dynamo", "dynamo18", "dynamo_opt"),
    "r2plus1d": ("ts11", "ts13", "ts17", "dynamo"),
    "inception3d": ("ts11", "ts13", "ts17", "dynamo", "dynamo_opt"),
    "slowfast": ("ts11", "ts13", "ts17", "dynamo"),
    "preact": ("ts11", "ts13", "ts17", "dynamo", "dynamo_opt"),
    "deconv2d": ("ts11", "ts13", "ts17", "dynamo"),
    "temporal_conv1d": ("ts11", "ts13", "ts17", "dynamo"),
}


def _torch_builder(family: str, variant: str) -> Callable[[], CorpusModel]:
    def build() -> CorpusModel:
        # Imported here so handmade entries never pay for importing torch.
        from .exporters import build_exported
        from .torch_nets import SPECS

        return build_exported(SPECS[family], variant)

    return build


def _all_builders() -> dict[str, Callable[[], CorpusModel]]:
    table = {
        f"{family}@{variant}": _torch_builder(family, variant)
        for family, variants in TORCH_VARIANTS.items()
        for variant in variants
    }
    table.update(_handmade_builders())
    return table


ALL: dict[str, Callable[[], CorpusModel]] = _all_builders()


@functools.cache
def get(name: str) -> CorpusModel:
    """The entry ``name``, built on first use and cached for the process."""
    return ALL[name]()


def corpus() -> dict[str, CorpusModel]:
    """Every entry, built once."""
    return {name: get(name) for name in ALL}
