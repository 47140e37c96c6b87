"""OUT/manifest.json and OUT/progress.jsonl: which saved files are finished results of which spec.

Each finished batch is written atomically and then recorded, so a rerun skips exactly
what is done; a folder holding another spec's results is refused rather than mixed.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..types import MaximizeResult
from .errors import SweepConflict
from .files import digest, file_digest, save_json, write_atomic
from .plan import Batch, Plan
from .spec import SweepSpec

MANIFEST = "manifest.json"
PROGRESS = "progress.jsonl"
MANIFEST_VERSION = 1



def append_progress(out: Path, line: dict[str, Any]) -> None:
    line = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **line}
    with (out / PROGRESS).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(line) + "\n")


def _new_manifest(spec: SweepSpec) -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "spec": str(spec.path), "spec_sha256": digest(spec.path.read_bytes()),
            "params": spec.params(), "params_hash": spec.params_hash(), "models": {}, "batches": {}, "galleries": {}}


def open_manifest(out: Path, spec: SweepSpec, plan: Plan, restart: bool) -> dict[str, Any]:
    """The folder's manifest if it belongs to this spec; with `restart`, a fresh one after discarding the old results."""
    path = out / MANIFEST
    if not path.exists():
        return _new_manifest(spec)
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old_hash, old_params, old_models = old["params_hash"], old["params"], dict(old["models"])
        for key in ("batches", "galleries"):
            old.setdefault(key, {})
    except (ValueError, KeyError, TypeError) as exc:
        if restart:
            return _new_manifest(spec)
        raise SweepConflict(f"{path} cannot be read ({exc}); pass --restart to start this folder over") from None
    if restart:
        _discard(out, old)
        return _new_manifest(spec)
    if old_hash != spec.params_hash():
        raise SweepConflict(f"{out} holds results of a different spec ({_changes(old_params, spec.params())}); "
                            "they would mix with this one's. Pass --restart to discard them, or choose another --out")
    for folder, model_id in plan.models.items():
        if old_models.get(folder, model_id) != model_id:
            raise SweepConflict(f"{out / folder} holds results of model {old_models[folder]}, but the spec now gives "
                                f"model {model_id} that name; pass --restart to discard them, or give it another `name`")
    old.update(spec=str(spec.path), spec_sha256=digest(spec.path.read_bytes()))  # saved with the next result
    return old


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    changed = [f"{key} {old.get(key)!r} → {new.get(key)!r}" for key in new if old.get(key) != new.get(key)]
    return ", ".join(changed) or "format"


def _discard(out: Path, manifest: dict[str, Any]) -> None:
    """Removes exactly the result files an earlier sweep recorded, nothing else."""
    files = list(manifest.get("batches", {})) + [g.get("result", "") for g in manifest.get("galleries", {}).values()]
    for relative in filter(None, files):
        target = (out / relative).resolve()
        if out.resolve() in target.parents:
            target.unlink(missing_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    append_progress(out, {"event": "restart"})


def is_done(out: Path, manifest: dict[str, Any], batch: Batch) -> bool:
    """Recorded with the same model, layer, target and units, and the file is byte for byte the one recorded."""
    record = manifest["batches"].get(batch.file)
    if not record or {k: record.get(k) for k in batch.record()} != batch.record():
        return False
    path = out / batch.file
    return path.is_file() and path.stat().st_size == record.get("bytes") and file_digest(path) == record.get("sha256")



def save_batch(out: Path, manifest: dict[str, Any], batch: Batch, result: MaximizeResult) -> None:
    """The result file first, then the manifest: a kill in between only costs redoing this batch."""
    path = out / batch.file
    write_atomic(path, result.save_npz)
    manifest["batches"][batch.file] = {**batch.record(), "bytes": path.stat().st_size, "sha256": file_digest(path)}
    manifest["models"][batch.model] = batch.model_id
    save_json(out / MANIFEST, manifest)
    append_progress(out, {"event": "batch", "file": batch.file, **batch.record(), "model": batch.model,
                           "seconds": round(result.seconds, 3), "activation": result.activation_table().tolist(),
                           "warnings": result.warnings})
