"""Which files make up a model on disk: the .onnx file and the external-data files it names.

Shared by the client (which uploads them) and the importer (which reads a path). Only
plain names in the model's own folder count, and symlinks are skipped, so a model
file can never point either side at anything else on disk.
"""

from __future__ import annotations

from pathlib import Path


def is_plain_name(name: str) -> bool:
    """A bare file name: no folders, no '..', no drive letters, no home shortcuts."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\:\x00") and not name.startswith("~")


def external_locations(data: bytes) -> set[str]:
    """The external-data locations a serialized model names (empty if it cannot be parsed)."""
    import onnx  # noqa: PLC0415 - only needed when uploading a model
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return set()
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
