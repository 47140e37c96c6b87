"""Which files make up a model on disk: the .onnx file and the external-data files it names.

Shared by the client (which uploads them) and the importer (which reads a path). Only
plain names in the model's own folder count, and symlinks are skipped, so a model
file can never point either side at anything else on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Protocol

_CHUNK = 1 << 20


class Blob(Protocol):
    """Bytes, or a file read by span (the importer's FileBlob): what an external-data file is given as."""

    def __len__(self) -> int: ...

    def __getitem__(self, span: slice) -> bytes: ...


def model_id(data: bytes, external: Mapping[str, Blob] | None = None) -> str:
    """A model's id: the first 16 hex digits of the sha256 of its bytes and of each external-data file.

    The same `.onnx` with other external weights is another model, so results can never
    be filed under the wrong weights. Files are taken in name order, each after its name;
    a model without external data keeps the plain sha256 of its bytes.
    """
    digest = hashlib.sha256(data)
    for name in sorted(external or {}):
        blob = external[name]
        digest.update(b"\0external-data\0" + name.encode() + b"\0" + str(len(blob)).encode() + b"\0")
        for start in range(0, len(blob), _CHUNK):
            digest.update(blob[start:start + _CHUNK])
    return digest.hexdigest()[:16]


def is_plain_name(name: str) -> bool:
    """A bare file name: no folders, no '..', no drive letters, no home shortcuts."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\:\x00") and not name.startswith("~")


def external_locations(data: bytes) -> set[str]:
    """The external-data locations a serialized model names (empty if it cannot be parsed)."""
    model = parse_model(data)
    return locations_in(model) if model is not None else set()


def parse_model(data: bytes):
    """`data` as an onnx.ModelProto, or None where protobuf cannot parse it (nothing else is checked)."""
    import onnx  # noqa: PLC0415 - only needed when uploading a model
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return None
    return model


def locations_in(model) -> set[str]:
    """The external-data locations a parsed model names."""
    import onnx  # noqa: PLC0415

    return {
        entry.value
        for tensor in onnx.external_data_helper._get_all_tensors(model)  # noqa: SLF001 - onnx's own walker
        for entry in tensor.external_data
        if entry.key == "location"
    }


def read_model_files(path: Path) -> tuple[bytes, dict[str, bytes]]:
    """The model's bytes and the regular, non-symlink files beside it that it names."""
    data = Path(path).read_bytes()
    files = {}
    for name in sorted(external_locations(data)):
        candidate = Path(path).parent / name
        if is_plain_name(name) and not candidate.is_symlink() and candidate.is_file():
            files[name] = candidate.read_bytes()
    return data, files
