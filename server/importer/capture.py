"""Read intermediate tensors of a converted model by their ONNX names, with hooks that always go away."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch

from .convert import tensor_sources
from .errors import InvalidModel


@contextmanager
def capture(module: torch.nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Yield a dict that fills with the named tensors on each forward; hooks are removed on exit."""
    sources = tensor_sources(module)
    names = list(names)
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise InvalidModel(f"no layer named {', '.join(map(repr, unknown))} in this model", stage="capture")
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        sub, index = sources[name]

        def hook(_module, _inputs, output, name=name, index=index):
            seen[name] = output[index] if index is not None else output

        handles.append(sub.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()
