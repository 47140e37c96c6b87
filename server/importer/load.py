"""Parse model bytes and attach external data from the uploaded files alone.

Nothing here touches the filesystem: external-data locations are looked up by plain
file name in the mapping the caller uploaded, so a model cannot make the server read
`../../etc/passwd`, an absolute path, or anything behind a symlink.
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from onnx import ModelProto, TensorProto

from kinetoscope.model_files import is_plain_name

from .errors import InvalidModel, ModelTooLarge, UnsafeExternalData
from .limits import ImportLimits

_STAGE = "load"


def load_model(
    data: bytes,
    external_data: Mapping[str, bytes] | None = None,
    limits: ImportLimits = ImportLimits(),
    *,
    parsed: ModelProto | None = None,
) -> ModelProto:
    """Parse `data` as an ONNX model and resolve its external tensors from `external_data`.

    `parsed`: `data` already parsed by protobuf (a 126 MB model takes 30–70 ms to parse), checked here as if
    parsed here; it becomes the returned model."""
    external_data = dict(external_data or {})
    total = len(data) + sum(len(blob) for blob in external_data.values())
    if total > limits.max_model_bytes:
        raise ModelTooLarge(
            f"model and its external data are {total:,} bytes; the limit is {limits.max_model_bytes:,}", stage=_STAGE
        )
    if not data:
        raise InvalidModel("the model file is empty", stage=_STAGE)
    model = _parse(data) if parsed is None else _checked(parsed)
    for name in external_data:
        check_plain_name(name)
    for tensor in all_tensors(model):
        check_tensor_size(tensor, limits)
        if tensor.data_location == TensorProto.EXTERNAL:
            _attach_external(tensor, external_data)
        else:
            check_inline_data(tensor)
    return model


def _parse(data: bytes) -> ModelProto:
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidModel(f"not an ONNX model (protobuf could not parse it: {exc})", stage=_STAGE) from None
    return _checked(model)


def _checked(model: ModelProto) -> ModelProto:
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise InvalidModel("not an ONNX model: it has no graph, or the graph has no nodes", stage=_STAGE)
    if not model.opset_import:
        raise InvalidModel("not an ONNX model: it declares no opset", stage=_STAGE)
    _check_text(model)
    return model


_NAME_FIELDS = frozenset({"name", "input", "output", "op_type", "domain"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_text(message) -> None:
    """Every string field must be text (protobuf hands an ONNX string with invalid UTF-8 back as bytes),
    and names hold no control characters (they end up in the generated torch code)."""
    stack = [message]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            if field.type == field.TYPE_MESSAGE:
                stack.extend([value] if isinstance(value, Message) else value)
            elif field.type == field.TYPE_STRING:
                values = [value] if isinstance(value, (str, bytes)) else value
                if any(not isinstance(v, str) for v in values):
                    raise InvalidModel(f"not an ONNX model: a {current.DESCRIPTOR.name}.{field.name} is not valid UTF-8 text",
                                       stage=_STAGE)
                if field.name in _NAME_FIELDS and any(_CONTROL.search(v) for v in values):
                    raise InvalidModel(f"a {current.DESCRIPTOR.name}.{field.name} holds control characters: "
                                       f"{next(v for v in values if _CONTROL.search(v))!r}", stage=_STAGE)


def all_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Initializers and tensor attributes, in subgraphs too."""
    yield from onnx.external_data_helper._get_all_tensors(model)  # noqa: SLF001 - the one walker onnx ships


def check_plain_name(name: str) -> None:
    """Refuse any external-data location that is not a bare file name."""
    if not is_plain_name(name):
        raise UnsafeExternalData(
            f"external data location {name!r} is not a plain file name in the model's folder; "
            "paths, '..' and drive letters are refused",
            stage=_STAGE,
        )


def _dtype_size(data_type: int) -> int:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        raise InvalidModel(f"tensor has unknown data type {data_type}", stage=_STAGE) from None


def expected_nbytes(tensor: TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        if dim < 0:
            raise InvalidModel(f"tensor {tensor.name!r} has a negative dimension {list(tensor.dims)}", stage=_STAGE)
        count *= dim
    if tensor.data_type == TensorProto.STRING:
        return 0
    return count * _dtype_size(tensor.data_type)


def check_tensor_size(tensor: TensorProto, limits: ImportLimits) -> None:
    nbytes = expected_nbytes(tensor)
    if nbytes > limits.max_tensor_bytes:
        raise ModelTooLarge(
            f"tensor {tensor.name!r} of shape {list(tensor.dims)} would take {nbytes:,} bytes; "
            f"the limit is {limits.max_tensor_bytes:,}",
            stage=_STAGE,
        )


_FLOAT_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16}


def check_inline_data(tensor: TensorProto) -> None:
    """A tensor's stored bytes must be exactly what its dims and type say, and a float weight must hold no NaN.

    One read of the bytes serves both: reading `raw_data` copies every byte of it."""
    if tensor.data_type == TensorProto.STRING:
        return
    if not tensor.HasField("raw_data"):
        if tensor.data_type in _FLOAT_DTYPES:
            _check_no_nan(tensor, onnx.numpy_helper.to_array(tensor))
        return
    raw = tensor.raw_data
    expected = expected_nbytes(tensor)
    if len(raw) != expected:
        raise InvalidModel(
            f"tensor {tensor.name!r} declares shape {list(tensor.dims)} ({expected:,} bytes) "
            f"but stores {len(raw):,} bytes",
            stage=_STAGE,
        )
    _check_no_nan_bytes(tensor, raw)


def _check_no_nan_bytes(tensor: TensorProto, raw: bytes) -> None:
    """`_check_no_nan` on a tensor's raw bytes, read as its float type (other types pass)."""
    if tensor.data_type in _FLOAT_DTYPES:
        _check_no_nan(tensor, np.frombuffer(raw, dtype=_FLOAT_DTYPES[tensor.data_type]))


def _check_no_nan(tensor: TensorProto, values: np.ndarray) -> None:
    """A NaN weight makes every activation downstream NaN: refused here, not as a parity failure later."""
    if not np.isnan(values.sum(dtype=np.float64)):  # a sum allocates nothing; NaN anywhere makes it NaN
        return
    bad = int(np.count_nonzero(np.isnan(values)))
    if bad:
        raise InvalidModel(
            f"weight tensor {tensor.name!r} holds {bad:,} NaN value(s) of {values.size:,}; re-export the model "
            "from a checkpoint with finite weights", stage=_STAGE)


def _attach_external(tensor: TensorProto, files: Mapping[str, bytes]) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    check_plain_name(location)
    if location not in files:
        sent = ", ".join(sorted(files)) or "none"
        raise InvalidModel(
            f"tensor {tensor.name!r} keeps its data in {location!r}, which was not uploaded with the model "
            f"(files sent: {sent})",
            stage=_STAGE,
        )
    blob = files[location]
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else len(blob) - offset
    except ValueError:
        raise InvalidModel(f"tensor {tensor.name!r} has a non-numeric external offset/length", stage=_STAGE) from None
    if offset < 0 or length < 0 or offset + length > len(blob):
        raise InvalidModel(
            f"tensor {tensor.name!r} reads bytes {offset}..{offset + length} of {location!r}, "
            f"which holds {len(blob):,} bytes",
            stage=_STAGE,
        )
    expected = expected_nbytes(tensor)
    if length != expected:
        raise InvalidModel(
            f"tensor {tensor.name!r} declares shape {list(tensor.dims)} ({expected:,} bytes) "
            f"but its external data is {length:,} bytes",
            stage=_STAGE,
        )
    data = bytes(blob[offset : offset + length])
    _check_no_nan_bytes(tensor, data)
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT
