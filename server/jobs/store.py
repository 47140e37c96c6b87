"""JobStore: job records (JSON), per-job event logs and task results keyed by content, under <root>/jobs.

Records and results are written atomically (temporary file, fsync, rename, fsync of the
folder), so a server killed at any moment leaves each one whole or absent. Event logs
are append-only files of length-prefixed messages; a record cut short by a kill is
ignored when the log is read back. The store knows bytes and dicts only: what the
bytes mean is the service's business.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import threading
from pathlib import Path
from typing import Iterable, Iterator

from kinetoscope.server import staging

_LOGGER = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{8,64}$")
_LENGTH = struct.Struct("<I")


def frame(messages: Iterable[bytes]) -> bytes:
    """Messages as one blob, each prefixed by its length (4 bytes, little-endian)."""
    return b"".join(_LENGTH.pack(len(m)) + m for m in messages)


def unframe(blob: bytes) -> Iterator[bytes]:
    """The messages of `frame`'s blob; a message cut short at the end is dropped."""
    offset = 0
    while offset + _LENGTH.size <= len(blob):
        (size,) = _LENGTH.unpack_from(blob, offset)
        end = offset + _LENGTH.size + size
        if end > len(blob):
            return
        yield blob[offset + _LENGTH.size : end]
        offset = end


class JobStore:
    """<root>/jobs/records/<id>/{job.json, events.log} and <root>/jobs/results/<key[:2]>/<key>.bin."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "jobs"
        self.records = self.root / "records"
        self.results = self.root / "results"
        for folder in (self.records, self.results):
            folder.mkdir(parents=True, exist_ok=True)
        self._appending = threading.Lock()
        self._clear_partials()

    # -- job records
    def save_record(self, job_id: str, record: dict) -> None:
        staging.write_file_atomic(self._folder(job_id) / "job.json", json.dumps(record).encode())

    def load_records(self) -> list[dict]:
        """Every readable job record, oldest first by `created_at`."""
        found = []
        for folder in self.records.iterdir():
            path = folder / "job.json"
            if not _ID.match(folder.name) or not path.is_file():
                continue
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                _LOGGER.warning("skipping unreadable job record %s: %s", path, exc)
        return sorted(found, key=lambda record: record.get("created_at", 0.0))

    def delete_job(self, job_id: str) -> None:
        folder = self._folder(job_id)
        if folder.exists():
            staging.discard(folder, job_id)

    # -- event logs
    def append_events(self, job_id: str, messages: Iterable[bytes]) -> None:
        """Appends to the job's log (flushed to the OS, which keeps it across a kill of this process)."""
        blob = frame(messages)
        with self._appending, (self._folder(job_id) / "events.log").open("ab") as stream:
            stream.write(blob)

    def read_events(self, job_id: str) -> list[bytes]:
        path = self._folder(job_id) / "events.log"
        return list(unframe(path.read_bytes())) if path.is_file() else []

    # -- task results
    def put_result(self, key: str, blob: bytes) -> None:
        staging.write_file_atomic(self._result_path(key), blob)

    def get_result(self, key: str) -> bytes | None:
        path = self._result_path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def has_result(self, key: str) -> bool:
        return self._result_path(key).is_file()

    def delete_result(self, key: str) -> None:
        self._result_path(key).unlink(missing_ok=True)

    # -- paths
    def _folder(self, job_id: str) -> Path:
        if not _ID.match(job_id):
            raise ValueError(f"a job id is 8 to 64 lower-case hex digits, not {job_id!r}")
        folder = self.records / job_id
        folder.mkdir(exist_ok=True)
        return folder

    def _result_path(self, key: str) -> Path:
        if not _ID.match(key):
            raise ValueError(f"a result key is lower-case hex, not {key!r}")
        return self.results / key[:2] / f"{key}.bin"

    def _clear_partials(self) -> None:
        """Temporary files of writers that died (their pid is gone) are removed; a live writer's are kept."""
        for path in [*self.records.glob("*/.partial-*"), *self.results.glob("*/.partial-*")]:
            owner = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
            if owner.isdigit() and not staging._alive(int(owner)):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        staging.sweep(self.records)
