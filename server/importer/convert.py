"""Convert a normalized ONNX graph to a torch.fx module with onnx2torch and our converters."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from onnx import ModelProto
from torch.overrides import TorchFunctionMode

from . import converters  # noqa: F401 - registers our converters into onnx2torch
from .converters.registry import find_converter
from .errors import UnsupportedModel
from .onnx2torch_adapter import build_module, graph_view

_STAGE = "convert"


def convert(model: ModelProto, unwritten: Mapping[str, np.ndarray] | None = None) -> torch.fx.GraphModule:
    """The torch module, in eval mode with frozen weights; positional inputs in graph order.

    Shapes are already inferred (on a skeleton, so models over 2 GiB work too), so the module
    is built without onnx2torch's own inference, which would serialize the whole model again.
    `unwritten`: values of initializers the graph holds without bytes (fold_bn.py); the module's
    weights share their memory.
    """
    _check_coverage(model)
    try:
        with SkipRandomInit():
            module = build_module(model, unwritten=unwritten)
    except NotImplementedError:
        _raise_every_failure(model)
        raise
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class SkipRandomInit(TorchFunctionMode):
    """Conv and Linear layers built in this thread skip their random initialization: the graph gives their weights.

    A torch function mode is per thread, so layers another thread builds meanwhile
    (a model being trained, say) are initialized as usual.
    """

    SKIPPED = frozenset({torch.nn.init.kaiming_uniform_, torch.nn.init.uniform_})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.SKIPPED:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def tensor_sources(module: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, int | None]]:
    """ONNX tensor name → (submodule that produces it, output index if it returns several)."""
    sources: dict[str, tuple[torch.nn.Module, int | None]] = {}
    for _, sub in module.named_modules():
        mapping = getattr(sub, "onnx_mapping", None)
        if mapping is None:
            continue
        outputs = list(mapping.outputs)
        for index, name in enumerate(outputs):
            sources[name] = (sub, index if len(outputs) > 1 else None)
    return sources


def _check_coverage(model: ModelProto) -> None:
    opsets = {entry.domain or "": entry.version for entry in model.opset_import}
    missing: dict[str, list[str]] = {}
    for index, node in enumerate(model.graph.node):
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain not in opsets or find_converter(node.op_type, opsets[domain], domain) is None:
            label = f"{node.op_type}-{opsets.get(domain, '?')}" + (f" ({domain})" if domain else "")
            missing.setdefault(label, []).append(node.name or f"#{index}")
    if missing:
        raise UnsupportedModel(_listing("no converter for", missing), stage=_STAGE)


def _raise_every_failure(model: ModelProto) -> None:
    """Run every node's converter alone, so the error lists all failing nodes at once."""
    opsets = {entry.domain or "": entry.version for entry in model.opset_import}
    failures: dict[str, list[str]] = {}
    graph = graph_view(model)
    for name, node in graph.nodes.items():
        converter = find_converter(node.operation_type, opsets[node.domain], node.domain)
        try:
            converter(node, graph)
        except NotImplementedError as exc:
            failures.setdefault(f"{node.operation_type}: {exc}", []).append(name)
    if failures:
        raise UnsupportedModel(_listing("cannot convert", failures), stage=_STAGE)


def _listing(what: str, found: dict[str, list[str]]) -> str:
    parts = [f"{key} (nodes: {', '.join(nodes[:5])}{' ...' if len(nodes) > 5 else ''})" for key, nodes in found.items()]
    return f"{what} {len(found)} op(s): " + "; ".join(parts)
