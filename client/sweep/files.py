"""Files a sweep writes: atomically (a killed run never leaves half a file under the real name), with digests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Writes a hidden partial file, then renames it: a killed run never leaves half a file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as stream:
        write(stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


def save_json(path: Path, document: dict) -> None:
    write_atomic(path, lambda stream: stream.write(json.dumps(document, indent=1).encode() + b"\n"))
