"""A content-addressed model store on local disk: <root>/models/<id>/{model.onnx, meta.json, ...}.

Every file is written into a hidden folder that is renamed into place in one step, so a
crash never leaves a half-written model behind; opening the store clears what a killed
writer left (kinetoscope.server.staging).
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from kinetoscope.model_files import is_plain_name

from . import staging


class ModelNotFound(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class StoredModel:
    id: str
    folder: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.meta.get("name", self.id)

    def model_bytes(self) -> bytes:
        return (self.folder / "model.onnx").read_bytes()

    def external_data(self) -> dict[str, bytes]:
        folder = self.folder / "external"
        if not folder.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.is_symlink()}


class ModelStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.models = self.root / "models"
        self.models.mkdir(parents=True, exist_ok=True)
        self._installing = threading.Lock()
        self._metas: dict[str, tuple[tuple[int, int, int], dict]] = {}
        """Model id -> (the meta file's inode, mtime and size; its parsed content): every call of a job reads it."""
        staging.sweep(self.models)

    def put(self, model_id: str, data: bytes, meta: dict, external: Mapping[str, bytes] | None = None) -> StoredModel:
        if not is_plain_name(model_id) or model_id.startswith("."):
            raise ValueError(f"a model id is a plain folder name, not {model_id!r}")
        for name in external or {}:
            if not is_plain_name(name):
                raise ValueError(f"external file {name!r} is not a plain file name")
        final = self.models / model_id
        folder = staging.new_folder(self.models, staging.PARTIAL, model_id)
        try:
            (folder / "model.onnx").write_bytes(data)
            if external:
                (folder / "external").mkdir()
                for name, blob in external.items():
                    (folder / "external" / name).write_bytes(blob)
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
            with self._installing:
                staging.install(folder, final)
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
        return StoredModel(model_id, final, meta)

    def list(self) -> list[StoredModel]:
        found = []
        for folder in sorted(self.models.iterdir()):
            if folder.name.startswith("."):
                continue
            stored = self._read(folder.name)
            if stored is not None:
                found.append(stored)
        return found

    def get(self, id_or_name: str) -> StoredModel:
        """By id, id prefix or name (the newest import of that name wins)."""
        if is_plain_name(id_or_name) and not id_or_name.startswith("."):
            stored = self._read(id_or_name)
            if stored is not None:
                return stored
        models = self.list()
        for stored in models:
            if stored.id == id_or_name:
                return stored
        named = [m for m in models if m.name == id_or_name]
        if named:
            return max(named, key=lambda m: m.meta.get("imported_at", 0))
        prefixed = [m for m in models if m.id.startswith(id_or_name)] if len(id_or_name) >= 4 else []
        if len(prefixed) == 1:
            return prefixed[0]
        known = ", ".join(f"{m.name} ({m.id})" for m in models) or "none"
        raise ModelNotFound(f"no model {id_or_name!r} in the store; models: {known}")

    def _read(self, model_id: str) -> StoredModel | None:
        """The model stored under `model_id`, its meta parsed once per version of the file; None if there is none."""
        folder = self.models / model_id
        try:
            status = (folder / "meta.json").stat()
            version = (status.st_ino, status.st_mtime_ns, status.st_size)
            cached = self._metas.get(model_id)
            if cached is None or cached[0] != version:
                cached = (version, json.loads((folder / "meta.json").read_text()))
                self._metas[model_id] = cached
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):  # no meta file: not a model (yet)
            self._metas.pop(model_id, None)
            return None
        return StoredModel(model_id, folder, cached[1])

    def delete(self, id_or_name: str) -> None:
        stored = self.get(id_or_name)
        with self._installing:
            staging.discard(stored.folder, stored.id)
