"""Folders that appear in one rename, and the clean-up of what a killed writer left behind.

A store writes a new entry into `.partial-<pid>-<key>-*`, then renames it into place.
An entry that already exists is first renamed to `.replaced-<pid>-<key>-*`, so that a
crash between the two renames leaves the old entry recoverable. `sweep`, run when a
store opens, deletes partial and deleting folders of writers that are no longer alive
and puts a replaced entry back when its successor never arrived. Folders of a live
process are left alone: another server may be writing into the same store.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

PARTIAL, REPLACED, DELETING = ".partial", ".replaced", ".deleting"
_OWNED = re.compile(r"^(\.partial|\.replaced|\.deleting)-(\d+)-([^-]*)-")
_LEGACY_AGE_S = 3600.0
"""Hidden folders in the older, pid-less naming are cleared once this old (their writer is long gone)."""


def new_folder(parent: Path, kind: str, key: str) -> Path:
    """An empty hidden folder of `kind` for `key`, owned by this process."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-{key}-", dir=parent))


def install(staging: Path, final: Path) -> None:
    """Renames `staging` to `final`; an existing `final` is set aside first and removed once the new one is in place."""
    if not final.exists():
        os.replace(staging, final)
        return
    previous = new_folder(final.parent, REPLACED, final.name)
    os.replace(final, previous / "entry")
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to a hidden temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the folder.

    A crash at any point leaves either the old file or the new one under `path`, never
    half of one; the temporary name starts with `.partial-<pid>-` like staging folders.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f"{PARTIAL}-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Makes a rename in `folder` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def discard(folder: Path, key: str) -> None:
    """Removes `folder` by first renaming it away, so a crash never leaves half of it under its real name."""
    trash = new_folder(folder.parent, DELETING, key)
    os.replace(folder, trash / "entry")
    shutil.rmtree(trash, ignore_errors=True)


def sweep(parent: Path) -> list[str]:
    """Clears what dead writers left in `parent`; returns the names it removed or restored."""
    cleared = []
    for entry in sorted(parent.iterdir()):
        if not entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        owned = _OWNED.match(entry.name)
        if owned is None:
            if time.time() - entry.stat().st_mtime > _LEGACY_AGE_S:
                shutil.rmtree(entry, ignore_errors=True)
                cleared.append(entry.name)
            continue
        kind, pid, key = owned[1], int(owned[2]), owned[3]
        if _alive(pid):
            continue
        kept = entry / "entry"
        if kind == REPLACED and kept.is_dir() and key and not (parent / key).exists():
            os.replace(kept, parent / key)
            _LOGGER.warning("restored %s, which a writer killed while replacing it had set aside", key)
        shutil.rmtree(entry, ignore_errors=True)
        cleared.append(entry.name)
    if cleared:
        _LOGGER.info("cleared %d folder(s) left by writers that died in %s: %s", len(cleared), parent, ", ".join(cleared))
    return cleared


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
