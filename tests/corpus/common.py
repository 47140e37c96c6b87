"""Pieces shared by every corpus family: the record type, BN statistics, graph counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx

#: Input kinds understood by kinetoscope (see ``kinetoscope.server.importer.inputs``).
KINDS = ("image", "stacked_flow", "video", "flow_video")

#: Producers whose output a following BatchNormalization can be folded into.
FOLD_TARGETS = frozenset({"Conv", "ConvTranspose", "Gemm"})


@dataclass(frozen=True)
class CorpusModel:
    """One serialized test model plus the facts tests can check it against.

    ``inputs`` holds declarations ``NAME=DxDxD:KIND`` with the static shape a caller
    should feed, written in the layout the graph declares (channel-last stays so).
    """

    name: str
    onnx: bytes
    inputs: list[str]
    bn_count: int
    foldable_bn: int
    notes: str = ""

    def proto(self) -> onnx.ModelProto:
        """Parse a fresh copy, so callers may mutate it freely."""
        return onnx.load_from_string(self.onnx)

    def input_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Declarations as ``{name: (shape, kind)}``."""
        parsed: dict[str, tuple[tuple[int, ...], str]] = {}
        for decl in self.inputs:
            name, rest = decl.split("=", 1)
            dims, kind = rest.split(":", 1)
            parsed[name] = (tuple(int(d) for d in dims.split("x")), kind)
        return parsed


@dataclass(frozen=True)
class BNStats:
    """Affine parameters and running statistics of one BatchNormalization."""

    scale: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def random_bn_stats(rng: np.random.Generator, channels: int) -> BNStats:
    """Draw statistics far from the identity defaults.

    Default BN state (mean 0, var 1, scale 1, bias 0) makes folding bugs invisible
    and lets exporters deduplicate the tensors, so every corpus BN uses these instead.
    """
    return BNStats(
        scale=rng.uniform(0.5, 1.5, channels).astype(np.float32),
        bias=rng.normal(0.0, 0.3, channels).astype(np.float32),
        mean=rng.normal(0.0, 0.3, channels).astype(np.float32),
        var=rng.uniform(0.5, 2.0, channels).astype(np.float32),
    )


def op_counts(model: onnx.ModelProto) -> Counter[str]:
    """Operator histogram of the main graph."""
    return Counter(node.op_type for node in model.graph.node)


def count_bn(model: onnx.ModelProto) -> int:
    """Number of BatchNormalization nodes in the main graph."""
    return op_counts(model)["BatchNormalization"]


def count_foldable_bn(model: onnx.ModelProto) -> int:
    """BN nodes fed directly by a Conv/ConvTranspose/Gemm output nothing else reads."""
    graph = model.graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    uses: Counter[str] = Counter(name for node in graph.node for name in node.input)
    uses.update(out.name for out in graph.output)
    return sum(
        1
        for node in graph.node
        if node.op_type == "BatchNormalization"
        and producer.get(node.input[0]) in FOLD_TARGETS
        and uses[node.input[0]] == 1
    )
