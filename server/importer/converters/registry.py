"""Our converters, registered into onnx2torch's registry beside (or instead of) its own.

onnx2torch looks a converter up by (domain, op_type, since_version of the op's schema
at the model's opset). We add versions it lacks and replace converters it gets wrong;
`replace=True` says so explicitly, so an accidental clash still raises.
"""

from __future__ import annotations

from typing import Callable

from onnx import defs

from ..onnx2torch_adapter import OperationDescription, TConverter, operation, register, registered

OURS: dict[OperationDescription, TConverter] = {}


def add_converter(
    operation_type: str, version: int, *, domain: str = defs.ONNX_DOMAIN, replace: bool = False
) -> Callable[[TConverter], TConverter]:
    """Register `converter` for one (op, since_version); decorators stack for several."""
    key = operation(operation_type, version, domain)

    def deco(converter: TConverter) -> TConverter:
        if key in OURS:
            raise ValueError(f"converter for {operation_type}-{version} registered twice")
        if registered(key) is not None and not replace:
            raise ValueError(f"onnx2torch already converts {operation_type}-{version}; pass replace=True to override")
        OURS[key] = converter
        register(key, converter)
        return converter

    return deco


def converter_for(operation_type: str, version: int) -> TConverter:
    """The converter registered now for an op's since_version (onnx2torch's own, until one of ours replaces it)."""
    converter = registered(operation(operation_type, version))
    if converter is None:
        raise KeyError(f"onnx2torch has no converter for {operation_type}-{version}")
    return converter


def find_converter(operation_type: str, opset: int, domain: str = defs.ONNX_DOMAIN) -> TConverter | None:
    """The converter used for this op at this opset, or None when there is none."""
    try:
        version = defs.get_schema(operation_type, max_inclusive_version=opset, domain=domain).since_version
    except (RuntimeError, defs.SchemaError):
        return None
    return registered(operation(operation_type, version, domain))
