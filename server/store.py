"""A content-addressed model store on local disk: <root>/models/<id>/{model.onnx, meta.json, ...}.

Every file is written to a temporary name and renamed into place, and a model's folder
appears in one rename, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

_LOGGER = logging.getLogger(__name__)


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

    def put(self, model_id: str, data: bytes, meta: dict, external: Mapping[str, bytes] | None = None) -> StoredModel:
        final = self.models / model_id
        staging = Path(tempfile.mkdtemp(prefix=f".{model_id}-", dir=self.models))
        try:
            (staging / "model.onnx").write_bytes(data)
            if external:
                (staging / "external").mkdir()
                for name, blob in external.items():
                    (staging / "external" / name).write_bytes(blob)
            (staging / "meta.json").write_text(json.dumps(meta, indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return StoredModel(model_id, final, meta)

    def list(self) -> list[StoredModel]:
        found = []
        for folder in sorted(self.models.iterdir()):
            if folder.name.startswith(".") or not (folder / "meta.json").is_file():
                continue
            found.append(StoredModel(folder.name, folder, json.loads((folder / "meta.json").read_text())))
        return found

    def get(self, id_or_name: str) -> StoredModel:
        """By id, id prefix or name (the newest import of that name wins)."""
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

    def delete(self, id_or_name: str) -> None:
        stored = self.get(id_or_name)
        trash = Path(tempfile.mkdtemp(prefix=".deleting-", dir=self.models))
        os.replace(stored.folder, trash / stored.id)
        shutil.rmtree(trash, ignore_errors=True)
