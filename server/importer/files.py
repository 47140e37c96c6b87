"""A model on disk, its external-data files read tensor by tensor rather than whole.

Reading every external file into memory first would hold a second copy of every
weight while they are parsed into the model; a `FileBlob` reads just the bytes one
tensor asks for. Only plain names in the model's own folder count, and symlinks are
refused, as for an upload.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from onnx import ModelProto

from kinetoscope.model_files import is_plain_name, locations_in, parse_model


class FileBlob:
    """The bytes of one regular file, read on slicing; `len()` is the file's size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, span: slice) -> bytes:
        start, stop, step = span.indices(self.size)
        if step != 1:
            raise ValueError("a file blob is read in one contiguous span")
        descriptor = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(descriptor, "rb") as file:
            file.seek(start)
            data = file.read(max(stop - start, 0))
        if len(data) != max(stop - start, 0):
            raise OSError(f"{self.path.name} ended before byte {stop:,}")
        return data

    def __repr__(self) -> str:
        return f"FileBlob({str(self.path)!r}, {self.size:,} bytes)"


@dataclass
class ModelFiles:
    data: bytes
    external: dict[str, FileBlob]
    """Unread: the regular non-symlink files beside the model that it names."""
    parsed: ModelProto | None
    """`data` parsed to find those names, for `load_model` to take instead of parsing it again (None: it does not
    parse, which `load_model` reports)."""


def open_model_files(path: Path) -> ModelFiles:
    """The model's bytes, parsed once, and the files beside it that it names."""
    data = Path(path).read_bytes()
    parsed = parse_model(data)
    files = {}
    for name in sorted(locations_in(parsed) if parsed is not None else ()):
        candidate = Path(path).parent / name
        if is_plain_name(name) and not candidate.is_symlink() and candidate.is_file():
            files[name] = FileBlob(candidate)
    return ModelFiles(data, files, parsed)
