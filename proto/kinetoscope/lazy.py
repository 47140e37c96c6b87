"""Package attributes loaded on first use (PEP 562), so that importing a package costs only what a caller touches.

`kinetoscope.server.engine` and `kinetoscope.server.importer` export names whose modules
import torch, onnx and onnx2torch (seconds). A server answering `layers` or a service
module that only names an error class must not pay for them: each name is imported from
its own module the first time it is read.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` (a submodule, relative to `package`) on first use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(importlib.import_module(package), name, value)  # later reads skip this function
        return value

    return __getattr__
