"""Each layer's batches merged into one result file and rendered into a gallery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .files import digest, save_json, write_atomic
from .manifest import MANIFEST, append_progress
from .plan import Plan


def merge_batches(parts: list[tuple[Path, tuple[int, ...]]], path: Path) -> None:
    """One result file for a layer, units in ascending order, with the keys `MaximizeResult.save_npz` writes."""
    loaded = []
    for file, _ in parts:
        with np.load(file, allow_pickle=False) as data:
            loaded.append({key: data[key] for key in data.files})
    order = np.argsort(np.concatenate([np.asarray(units) for _, units in parts]), kind="stable")
    per_unit = {"units", "unit_targets", "activation", "optimized", *(str(n) for n in loaded[0].get("input_names", ()))}
    # batches kept from a sweep made before results carried targets have none: then the layer's file has none
    keys = [key for key in loaded[0] if key != "unit_targets" or all(key in part for part in loaded)]
    merged = {key: np.concatenate([part[key] for part in loaded])[order] if key in per_unit else loaded[0][key]
              for key in keys}
    write_atomic(path, lambda stream: np.savez_compressed(stream, **merged))


def render_galleries(out: Path, plan: Plan, manifest: dict[str, Any]) -> list[tuple[Path, Path]]:
    """(result, index) per layer; a layer whose batches are unchanged since its last render is left as it is."""
    from ..render.cli import render_result  # noqa: PLC0415

    made = []
    for folder, batches in plan.layers().items():
        sources = digest(json.dumps([[b.file, manifest["batches"][b.file]["sha256"]] for b in batches], sort_keys=True))
        result = out / folder / "result.npz"
        known = manifest["galleries"].get(folder, {})
        index = out / known.get("index", f"{folder}/index.html")
        if known.get("sources") != sources or not result.is_file() or not index.is_file():
            merge_batches([(out / b.file, b.units) for b in batches], result)
            index = render_result(result, out / folder)
            known = {"result": f"{folder}/result.npz", "index": index.relative_to(out).as_posix(), "sources": sources}
            manifest["galleries"][folder] = known
            save_json(out / MANIFEST, manifest)
            append_progress(out, {"event": "gallery", "layer": folder, "index": known["index"]})
        made.append((result, index))
    return made
