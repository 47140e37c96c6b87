"""Recordings on local disk beside the models: <root>/recordings/<id>/{meta.json, stats.npz[, clips.npz]}.

clips.npz, when present, holds the recorded clips themselves (one array [N, *shape] per
graph input, their labels and ids), which the per-unit analysis measures units on;
recordings too large to keep them, and those stored before clips were kept, lack it.

A recording's folder is written under a temporary name and renamed into place in one
step, so a crash never leaves half a recording behind and a restarted server finds
every recording it acknowledged. Ids are 16 random hex digits: two recordings of the
same model and clips are still two recordings (names may repeat).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import staging
from .engine.statistics import LayerStatistics

_LOGGER = logging.getLogger(__name__)


class RecordingNotFound(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


CLIPS_FILE = "clips.npz"
_INPUT_PREFIX = "input."


@dataclass(frozen=True)
class KeptClips:
    """The recorded clips: one array [N, *input shape] per graph input, labels [N] (-1: none), ids [N] ("": none)."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    ids: list[str]

    @property
    def count(self) -> int:
        return int(len(self.labels))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{_INPUT_PREFIX + name: array for name, array in self.inputs.items()},
                "labels": np.asarray(self.labels, np.int64), "ids": np.asarray(self.ids, dtype=str)}

    @classmethod
    def from_arrays(cls, arrays) -> "KeptClips":
        inputs = {key[len(_INPUT_PREFIX):]: np.asarray(arrays[key]) for key in arrays if key.startswith(_INPUT_PREFIX)}
        return cls(inputs, np.asarray(arrays["labels"], np.int64), [str(i) for i in arrays["ids"].tolist()])

    @classmethod
    def stack(cls, inputs: Mapping[str, Sequence[np.ndarray]], labels: Sequence[int], ids: Sequence[str]) -> "KeptClips":
        return cls({name: np.stack(list(arrays)) for name, arrays in inputs.items()},
                   np.asarray(labels, np.int64).reshape(-1), list(ids))


@dataclass(frozen=True)
class StoredRecording:
    id: str
    folder: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.meta.get("name", "")

    @property
    def model(self) -> str:
        return self.meta["model"]

    @property
    def layers(self) -> list[str]:
        return list(self.meta["layers"])

    @property
    def clips(self) -> int:
        return int(self.meta["clips"])

    @property
    def clips_kept(self) -> bool:
        """Whether the clips themselves were stored with the statistics."""
        return (self.folder / CLIPS_FILE).is_file()

    def kept_clips(self) -> KeptClips | None:
        """The recorded clips, or None when they were not kept (read from disk on every call)."""
        if not self.clips_kept:
            return None
        with np.load(self.folder / CLIPS_FILE, allow_pickle=False) as arrays:
            return KeptClips.from_arrays({key: arrays[key] for key in arrays.files})

    def statistics(self) -> dict[str, LayerStatistics]:
        """Per layer, in recording order (read from disk on every call); arrays added since a recording was
        stored load empty (LayerStatistics.OPTIONAL)."""
        with np.load(self.folder / "stats.npz", allow_pickle=False) as arrays:
            return {
                layer: LayerStatistics.from_arrays(
                    layer, self.clips, {name: arrays[f"{i}.{name}"] for name in LayerStatistics.ARRAYS
                                        if f"{i}.{name}" in arrays.files})
                for i, layer in enumerate(self.layers)
            }

    def maxima(self) -> dict[tuple[str, int], float]:
        """â per (layer, channel): what Maximize divides a unit by."""
        with np.load(self.folder / "stats.npz", allow_pickle=False) as arrays:
            return {(layer, c): float(v) for i, layer in enumerate(self.layers) for c, v in enumerate(arrays[f"{i}.max"])}


class RecordingStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.recordings = self.root / "recordings"
        self.recordings.mkdir(parents=True, exist_ok=True)
        staging.sweep(self.recordings)

    def put(self, meta: Mapping, statistics: Mapping[str, LayerStatistics], kept: KeptClips | None = None) -> StoredRecording:
        """Stores statistics (layer → LayerStatistics) with `meta` (model, name, ...); adds id, layers, clips, created_at.

        `kept`, when given, are the recorded clips, stored beside the statistics in the same step."""
        if not statistics:
            raise ValueError("a recording holds at least one layer")
        recording_id = secrets.token_hex(8)
        clips = {stats.clips for stats in statistics.values()}
        if len(clips) != 1:
            raise ValueError(f"the layers of one recording saw different numbers of clips: {sorted(clips)}")
        meta = {**meta, "id": recording_id, "layers": list(statistics), "clips": clips.pop(),
                "created_at": meta.get("created_at", time.time())}
        arrays = {f"{i}.{name}": value for i, stats in enumerate(statistics.values())
                  for name, value in stats.to_arrays().items()}
        final = self.recordings / recording_id
        folder = staging.new_folder(self.recordings, staging.PARTIAL, recording_id)
        try:
            with open(folder / "stats.npz", "wb") as handle:
                np.savez(handle, **arrays)
            if kept is not None:
                if kept.count != meta["clips"]:
                    raise ValueError(f"{kept.count} kept clips for a recording of {meta['clips']}")
                with open(folder / CLIPS_FILE, "wb") as handle:
                    np.savez(handle, **kept.to_arrays())
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
            staging.install(folder, final)
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
        _LOGGER.info("stored recording %s of model %s: %d clips, layers %s", recording_id, meta.get("model"),
                     meta["clips"], ", ".join(statistics))
        return StoredRecording(recording_id, final, meta)

    def list(self, model: str | None = None) -> list[StoredRecording]:
        """Oldest first; only those of `model` (an id) when given."""
        found = []
        for folder in self.recordings.iterdir():
            if folder.name.startswith(".") or not (folder / "meta.json").is_file():
                continue
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError) as exc:
                _LOGGER.warning("skipping unreadable recording %s: %s", folder.name, exc)
                continue
            if model is None or meta.get("model") == model:
                found.append(StoredRecording(folder.name, folder, meta))
        return sorted(found, key=lambda r: (r.meta.get("created_at", 0), r.id))

    def get(self, id_or_name: str) -> StoredRecording:
        """By id, or by name (the newest recording of that name wins)."""
        recordings = self.list()
        for stored in recordings:
            if stored.id == id_or_name:
                return stored
        named = [r for r in recordings if r.name and r.name == id_or_name]
        if named:
            return named[-1]
        known = ", ".join(f"{r.id}" + (f" ({r.name})" if r.name else "") for r in recordings[-10:]) or "none"
        raise RecordingNotFound(f"no recording {id_or_name!r} in the store; recent recordings: {known}")

    def delete(self, id_or_name: str) -> None:
        stored = self.get(id_or_name)
        staging.discard(stored.folder, stored.id)
