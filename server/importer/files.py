"""A model on disk, its external-data files read tensor by tensor rather than whole.

Reading every external file into memory first would hold a second copy of every
weight while they are parsed into the model; a `FileBlob` reads just the bytes one
tensor asks for. Only plain names in the model's own folder count, and symlinks are
refused, as for an upload.
"""

from __future__ import annotations

import os
from pathlib import Path

from kinetoscope.model_files import external_locations, is_plain_name


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


def open_model_files(path: Path) -> tuple[bytes, dict[str, FileBlob]]:
    """The model's bytes and, unread, the regular non-symlink files beside it that it names."""
    data = Path(path).read_bytes()
    files = {}
    for name in sorted(external_locations(data)):
        candidate = Path(path).parent / name
        if is_plain_name(name) and not candidate.is_symlink() and candidate.is_file():
            files[name] = FileBlob(candidate)
    return data, files
