"""`kinetoscope sweep SPEC.toml`: maximize models × layers × units × settings headless, resumably.

A sweep can run for hours, so each finished batch is written atomically and recorded
in OUT/manifest.json: running the same command again skips what is done, and a spec
whose iterations, seed or settings differ is refused instead of being mixed into the
same folder. The spec format is documented by example in docs/sweep-example.toml.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import grpc
import numpy as np
from tqdm import tqdm

from .targets import TARGET_KINDS, find_layer, is_logit_layer, resolve_units, target_kind
from .types import LayerInfo, MaximizeResult, ModelInfo
from .units import UnitSpecError

if TYPE_CHECKING:
    from .client import Client

SPEC_KEYS = ("out", "iterations", "seed", "settings", "models", "jobs")
MODEL_KEYS = ("model", "file", "name", "inputs")
JOB_KEYS = ("layer", "units", "target", "batch")
SETTING_KEYS = ("kappa", "gamma")
MANIFEST = "manifest.json"
PROGRESS = "progress.jsonl"
MANIFEST_VERSION = 1

_TABLE_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


class SweepError(ValueError):
    """Something the user can fix before the sweep can run; the message says what."""


class SpecError(SweepError):
    """A spec that cannot run: every problem found, each prefixed with `SPEC:LINE: key`."""


class SweepConflict(SweepError):
    """The output folder holds results of a different spec, which must not be mixed in."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a kill) between batches: what is saved stays valid for a rerun."""


# -- the spec


@dataclass(frozen=True)
class ModelEntry:
    """One `[[models]]` table: a stored model (`model`) or an ONNX file imported on the fly (`file`)."""

    label: str
    model: str | None
    file: Path | None
    name: str | None
    inputs: tuple[str, ...]
    places: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def at(self, key: str = "") -> str:
        return self.places.get(key) or self.places.get("", self.label)


@dataclass(frozen=True)
class JobEntry:
    """One `[[jobs]]` table: a layer and units, swept on every model."""

    label: str
    layer: str
    units: str
    target: str | None
    batch: int | None
    places: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def at(self, key: str = "") -> str:
        return self.places.get(key) or self.places.get("", self.label)


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    out: Path | None
    iterations: int | None
    seed: int
    settings: tuple[tuple[float, float], ...]
    models: tuple[ModelEntry, ...]
    jobs: tuple[JobEntry, ...]

    def params(self) -> dict[str, Any]:
        """What a result depends on besides model, layer, units and target."""
        return {"iterations": self.iterations, "seed": self.seed, "settings": [list(s) for s in self.settings]}

    def params_hash(self) -> str:
        return _digest(json.dumps(self.params(), sort_keys=True))

    def out_dir(self) -> Path:
        """The spec's `out`, else out/<spec name> beside where the command runs (like `maximize --out`)."""
        return self.out if self.out is not None else Path("out") / self.path.stem


@dataclass(frozen=True)
class _Locator:
    """Finds the line of a key, so errors point into the spec (tomllib keeps no positions)."""

    path: Path
    lines: tuple[str, ...]

    def where(self, table: str | None, index: int | None = None, key: str | None = None) -> str:
        label = " ".join(filter(None, [f"[[{table}]] #{index + 1}" if table else "", key or ""]))
        line = self._line(table, index or 0, key)
        return f"{self.path}:{line}: {label}" if line else f"{self.path}: {label}"

    def _line(self, table: str | None, index: int, key: str | None) -> int | None:
        headers = [n for n, text in enumerate(self.lines) if _TABLE_HEADER.match(text)]
        if table is None:
            return self._key_line(key, 0, headers[0] if headers else len(self.lines)) if key else None
        mine = [n for n in headers if _TABLE_HEADER.match(self.lines[n]).groups()[:2] == ("[[", table)]
        if index >= len(mine):  # an inline array of tables: point at its key
            return self._key_line(table, 0, headers[0] if headers else len(self.lines))
        start = mine[index]
        end = next((n for n in headers if n > start), len(self.lines))
        return (self._key_line(key, start + 1, end) if key else None) or start + 1

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        return next((n + 1 for n in range(start, end) if pattern.match(self.lines[n])), None)


class _Reader:
    """Collects every problem of a spec, so one run reports them all."""

    def __init__(self, locator: _Locator) -> None:
        self.loc = locator
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def known_keys(self, table: dict, known: tuple[str, ...], name: str | None, index: int | None) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(self.loc.where(name, index, key), f"unknown key{hint} (known keys: {', '.join(known)})")

    def places(self, table: str, index: int, keys: Iterable[str]) -> dict[str, str]:
        return {"": self.loc.where(table, index), **{k: self.loc.where(table, index, k) for k in keys}}


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and checks a spec file; raises SpecError listing every problem found."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path} is not a file; docs/sweep-example.toml shows the format")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, path, text)


def parse_spec(data: dict[str, Any], path: Path, text: str = "") -> SweepSpec:
    reader = _Reader(_Locator(path, tuple(text.splitlines())))
    reader.known_keys(data, SPEC_KEYS, None, None)
    out = data.get("out")
    if out is not None and not (isinstance(out, str) and out):
        reader.fail(reader.loc.where(None, key="out"), 'must be a folder path such as "sweeps/fig9"')
    iterations = _integer(reader, data, "iterations", minimum=1, maximum=2**31 - 1)
    seed = _integer(reader, data, "seed", minimum=0, maximum=2**63 - 1)
    settings = _settings(reader, data.get("settings", [{"kappa": 1.0, "gamma": 1.0}]))
    models = tuple(_model_entries(reader, data.get("models"), path.parent))
    jobs = tuple(_job_entries(reader, data.get("jobs")))
    if reader.problems:
        raise SpecError("\n".join(reader.problems))
    return SweepSpec(path, Path(out) if isinstance(out, str) else None, iterations, seed or 0, settings, models, jobs)


def _integer(reader: _Reader, data: dict, key: str, *, minimum: int, maximum: int) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum):
        reader.fail(reader.loc.where(None, key=key), f"must be a whole number from {minimum} to {maximum}, not {value!r}")
        return None
    return value


def _settings(reader: _Reader, raw: Any) -> tuple[tuple[float, float], ...]:
    where = reader.loc.where(None, key="settings")
    if not isinstance(raw, list) or not raw:
        reader.fail(where, "must be a list of tables like [{kappa = 1, gamma = 0}, {kappa = 1, gamma = 5}]")
        return ()
    settings = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            reader.fail(where, f"entry {n} must be a table like {{kappa = 1, gamma = 1}}, not {item!r}")
            continue
        for key in item:
            if key not in SETTING_KEYS:
                reader.fail(where, f"entry {n} has unknown key {key!r}; a setting has kappa and gamma (each default 1)")
        values = [item.get(key, 1.0) for key in SETTING_KEYS]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
            reader.fail(where, f"entry {n}: kappa and gamma must be numbers ≥ 0, not {item!r}")
            continue
        settings.append((float(values[0]), float(values[1])))
    return tuple(settings)


def _tables(reader: _Reader, raw: Any, name: str, example: str) -> list[dict]:
    if raw is None:
        reader.fail(reader.loc.where(None, key=name), f"missing: add at least one [[{name}]] table with {example}")
        return []
    if not isinstance(raw, list) or not raw:
        reader.fail(reader.loc.where(None, key=name), f"must be one or more [[{name}]] tables with {example}")
        return []
    return raw


def _string(reader: _Reader, table: dict, key: str, where: str, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and required:
        reader.fail(where, f"missing {key!r}")
    elif value is not None and not (isinstance(value, str) and value.strip()):
        reader.fail(where, f"must be a non-empty string, not {value!r}")
        return None
    return value


def _model_entries(reader: _Reader, raw: Any, spec_dir: Path) -> Iterable[ModelEntry]:
    for index, table in enumerate(_tables(reader, raw, "models", '`model = "ID or name"` or `file = "MODEL.onnx"`')):
        if not isinstance(table, dict):
            reader.fail(reader.loc.where("models", index), "must be a table")
            continue
        reader.known_keys(table, MODEL_KEYS, "models", index)
        places = reader.places("models", index, MODEL_KEYS)
        model = _string(reader, table, "model", places["model"])
        file = _string(reader, table, "file", places["file"])
        name = _string(reader, table, "name", places["name"])
        inputs = table.get("inputs", [])
        if ("model" in table) == ("file" in table):
            reader.fail(places[""], 'give exactly one of `model = "ID or name"` (already imported) '
                                    'or `file = "MODEL.onnx"` (imported on the fly)')
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            reader.fail(places["inputs"], 'must be a list like ["rgb=1x3x32x32:image"]')
            inputs = []
        elif inputs and "file" not in table:
            reader.fail(places["inputs"], "input declarations apply when importing: use them with `file = ...`")
        path = _model_file(reader, file, spec_dir, places["file"]) if file else None
        yield ModelEntry(f"[[models]] #{index + 1}", model, path, name, tuple(inputs), places)


def _model_file(reader: _Reader, text: str, spec_dir: Path, where: str) -> Path | None:
    """A relative path is looked up beside the spec first, then in the current folder."""
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [spec_dir / path, path]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        reader.fail(where, f"no file {text!r} (looked in {' and '.join(str(c.parent) or '.' for c in candidates)})")
    return found


def _job_entries(reader: _Reader, raw: Any) -> Iterable[JobEntry]:
    for index, table in enumerate(_tables(reader, raw, "jobs", 'layer = "NAME" and units = "0-7" | "all"')):
        if not isinstance(table, dict):
            reader.fail(reader.loc.where("jobs", index), "must be a table")
            continue
        reader.known_keys(table, JOB_KEYS, "jobs", index)
        places = reader.places("jobs", index, JOB_KEYS)
        layer = _string(reader, table, "layer", places[""], required=True)
        units = _units_text(reader, table.get("units"), places["units"] if "units" in table else places[""])
        target = table.get("target")
        if target is not None and target not in TARGET_KINDS:
            reader.fail(places["target"], f"must be one of {', '.join(TARGET_KINDS)}, not {target!r}")
        batch = table.get("batch")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            reader.fail(places["batch"], f"must be a whole number ≥ 1 (units per Maximize call), not {batch!r}")
        yield JobEntry(f"[[jobs]] #{index + 1}", layer or "", units or "", target, batch, places)


def _units_text(reader: _Reader, raw: Any, where: str) -> str | None:
    """`units` as the CLI's text: "0-7", "all", [0, 3, 7] or class names all work."""
    if raw is None:
        reader.fail(where, 'missing units: give "0,3,7", "0-15", "all" or a list such as [0, 3, 7]')
        return None
    if isinstance(raw, list) and raw and all(isinstance(u, (int, str)) and not isinstance(u, bool) for u in raw):
        return ",".join(str(u) for u in raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str) and raw.strip():
        return raw
    reader.fail(where, f'cannot read {raw!r}: give "0,3,7", "0-15", "all" or a list such as [0, 3, 7]')
    return None


# -- the plan: every batch, checked against the models before any work


@dataclass(frozen=True)
class Batch:
    """Units of one layer maximized together in one call, saved as one file."""

    model: str  # the model's folder under OUT
    model_id: str
    layer: str
    folder: str  # "<model>/<layer folder>", relative to OUT
    kind: str
    units: tuple[int, ...]

    @property
    def file(self) -> str:
        return f"{self.folder}/units-{self.units[0]}-{self.units[-1]}.npz"

    def record(self) -> dict[str, Any]:
        """What makes a saved file this batch's result (the spec's params are checked once per folder)."""
        return {"model_id": self.model_id, "layer": self.layer, "target": self.kind, "units": list(self.units)}


@dataclass(frozen=True)
class Plan:
    models: dict[str, str]  # folder → model id
    batches: tuple[Batch, ...]

    def layers(self) -> dict[str, list[Batch]]:
        """Batches per layer folder, in plan order: one gallery each."""
        groups: dict[str, list[Batch]] = {}
        for batch in self.batches:
            groups.setdefault(batch.folder, []).append(batch)
        return groups


def plan_sweep(client: "Client", spec: SweepSpec) -> Plan:
    """Resolves (and imports) every model and checks every job on it; raises SpecError listing all problems."""
    problems: list[str] = []
    resolved: dict[str, tuple[ModelInfo, list[LayerInfo]]] = {}
    for entry in spec.models:
        found = _resolve_model(client, entry, problems)
        if found is None:
            continue
        folder = folder_name(entry.name or found[0].name)
        if folder in resolved:
            problems.append(f"{entry.at()}: a second model named {folder!r}; give one of them another `name`")
            continue
        resolved[folder] = found
    batches: list[Batch] = []
    claimed: dict[tuple[str, str], dict[int, str]] = {}
    layer_folders: dict[str, str] = {}
    for folder, (info, layers) in resolved.items():
        for job in spec.jobs:
            batches += _job_batches(folder, info, layers, job, problems, claimed, layer_folders)
    if problems:
        raise SpecError("\n".join(dict.fromkeys(problems)))
    return Plan({folder: info.id for folder, (info, _) in resolved.items()}, tuple(batches))


def folder_name(text: str) -> str:
    """A model or layer name as one folder name: `/` becomes `_`, and it never climbs out."""
    name = text.replace("/", "_").replace("\\", "_")
    return name if name not in ("", ".", "..") else f"_{name}"


def _resolve_model(client: "Client", entry: ModelEntry, problems: list[str]) -> tuple[ModelInfo, list[LayerInfo]] | None:
    try:
        if entry.file is not None:
            info = client.import_model(entry.file, name=entry.name or entry.file.stem, inputs=entry.inputs)
            return client.get_model(info.id)
        return client.get_model(entry.model or "")
    except ValueError as exc:
        problems.append(f"{entry.at('inputs')}: {exc}")
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND and entry.file is None:
            problems.append(f"{entry.at('model')}: no model {entry.model!r} in the store; import it first "
                            f"(`kinetoscope import MODEL.onnx --name {entry.model}`) or give `file = \"MODEL.onnx\"`")
        elif exc.code() == grpc.StatusCode.INVALID_ARGUMENT and entry.file is not None:
            problems.append(f"{entry.at('file')}: cannot import {entry.file}: {exc.details()}")
        else:
            raise
    return None


def _job_batches(folder: str, info: ModelInfo, layers: list[LayerInfo], job: JobEntry, problems: list[str],
                 claimed: dict[tuple[str, str], dict[int, str]], layer_folders: dict[str, str]) -> list[Batch]:
    layer = find_layer(layers, job.layer)
    if layer is None:
        close = difflib.get_close_matches(job.layer, [l.name for l in layers], n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        problems.append(f"{job.at('layer')}: model {folder!r} has no layer {job.layer!r}; {hint}"
                        f"(`kinetoscope layers {info.id}` lists them)")
        return []
    units = _job_units(folder, info, layer, job, problems)
    if units is None:
        return []
    if job.target == "logit" and not is_logit_layer(info, layer):
        problems.append(f"{job.at('target')}: layer {layer.name!r} is not a logits output; use \"channel\" or \"neuron\"")
        return []
    layer_folder = f"{folder}/{folder_name(layer.name)}"
    if layer_folders.setdefault(layer_folder, layer.name) != layer.name:
        problems.append(f"{job.at('layer')}: layers {layer_folders[layer_folder]!r} and {layer.name!r} "
                        f"would share the folder {layer_folder}; sweep them in separate out folders")
        return []
    owners = claimed.setdefault((folder, layer.name), {})
    again = [u for u in units if u in owners]
    if again:
        problems.append(f"{job.at('units')}: units {again} of layer {layer.name!r} are already swept by "
                        f"{owners[again[0]]}; give each unit once per layer")
        return []
    owners.update({u: job.label for u in units})
    kind = target_kind(info, layer, job.target or "channel")
    size = job.batch or len(units)
    return [Batch(folder, info.id, layer.name, layer_folder, kind, tuple(units[i : i + size]))
            for i in range(0, len(units), size)]


def _job_units(folder: str, info: ModelInfo, layer: LayerInfo, job: JobEntry, problems: list[str]) -> list[int] | None:
    """Sorted and unique: each batch file then covers units first..last, and galleries read in unit order."""
    try:
        units = resolve_units(info, layer, job.units)
    except UnitSpecError as exc:
        problems.append(f"{job.at('units')}: {exc} (layer {layer.name!r} of {folder!r} has {layer.channels} channels)")
        return None
    twice = sorted({u for u in units if units.count(u) > 1})
    if twice or not units:
        problems.append(f"{job.at('units')}: " + (f"lists units {twice} more than once" if twice else "selects no units"))
        return None
    return sorted(units)


# -- the output folder: manifest, atomic files, progress log


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _file_digest(path: Path) -> str:
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


def _save_json(path: Path, document: dict) -> None:
    write_atomic(path, lambda stream: stream.write(json.dumps(document, indent=1).encode() + b"\n"))


def _append_progress(out: Path, line: dict[str, Any]) -> None:
    line = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **line}
    with (out / PROGRESS).open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(line) + "\n")


def _new_manifest(spec: SweepSpec) -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "spec": str(spec.path), "spec_sha256": _digest(spec.path.read_bytes()),
            "params": spec.params(), "params_hash": spec.params_hash(), "models": {}, "batches": {}, "galleries": {}}


def _open_manifest(out: Path, spec: SweepSpec, plan: Plan, restart: bool) -> dict[str, Any]:
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
    old.update(spec=str(spec.path), spec_sha256=_digest(spec.path.read_bytes()))  # saved with the next result
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
    _append_progress(out, {"event": "restart"})


def _is_done(out: Path, manifest: dict[str, Any], batch: Batch) -> bool:
    """Recorded with the same model, layer, target and units, and the file is byte for byte the one recorded."""
    record = manifest["batches"].get(batch.file)
    if not record or {k: record.get(k) for k in batch.record()} != batch.record():
        return False
    path = out / batch.file
    return path.is_file() and path.stat().st_size == record.get("bytes") and _file_digest(path) == record.get("sha256")


# -- running: the batches as one stored job on the server


def sweep_request(spec: SweepSpec, batches: list[Batch]):
    """The batches as a JobService sweep: one SweepLayer per batch, tied to its model, so each becomes one task."""
    from kinetoscope.v1 import kinetoscope_pb2 as pb  # noqa: PLC0415

    options = pb.MaximizeOptions(seed=spec.seed)
    if spec.iterations is not None:
        options.iterations = spec.iterations
    layers = [pb.SweepLayer(layer=b.layer, channels=list(b.units), kind=pb.Target.Kind.Value(b.kind.upper()),
                            batch=len(b.units), model=b.model_id) for b in batches]
    return pb.SubmitJobRequest(name=f"sweep {spec.path.name}", sweep=pb.SweepRequest(
        models=list(dict.fromkeys(b.model_id for b in batches)), layers=layers,
        settings=[pb.RegularizerSetting(kappa=k, gamma=g) for k, g in spec.settings], options=options))


def _save_batch(out: Path, manifest: dict[str, Any], batch: Batch, result: MaximizeResult) -> None:
    """The result file first, then the manifest: a kill in between only costs redoing this batch."""
    path = out / batch.file
    write_atomic(path, result.save_npz)
    manifest["batches"][batch.file] = {**batch.record(), "bytes": path.stat().st_size, "sha256": _file_digest(path)}
    manifest["models"][batch.model] = batch.model_id
    _save_json(out / MANIFEST, manifest)
    _append_progress(out, {"event": "batch", "file": batch.file, **batch.record(), "model": batch.model,
                           "seconds": round(result.seconds, 3), "activation": result.activation_table().tolist(),
                           "warnings": result.warnings})


def _step_reporter(bar: tqdm, label: str) -> Callable:
    last = [0.0]

    def report(event) -> None:
        bar.set_postfix_str(f"{label} step {event.step + 1}/{event.iterations}", refresh=False)
        if time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            bar.refresh()

    return report


def follow_job(client: "Client", job: str, on_event: Callable, *, retries: int = 5) -> None:
    """Watches `job` to its end, re-attaching from the last offset when the connection drops."""
    position, failures = 0, 0
    while True:
        try:
            for event in client.watch_job(job, position):
                position, failures = event.offset + 1, 0
                on_event(event)
            return
        except grpc.RpcError as exc:
            failures += 1
            if exc.code() != grpc.StatusCode.UNAVAILABLE or failures > retries:
                raise
            time.sleep(min(2.0, 0.2 * 2 ** failures))


def _run_batches(client: "Client", spec: SweepSpec, out: Path, manifest: dict[str, Any], pending: list[Batch],
                 total: int, show_progress: bool, job: str) -> None:
    by_task = {(b.model_id, b.layer, b.units): b for b in pending}
    with tqdm(total=total, initial=total - len(pending), desc="sweep", unit="batch", file=sys.stderr,
              disable=not show_progress, dynamic_ncols=True) as bar:
        report = _step_reporter(bar, f"job {job}")

        def on_event(event) -> None:
            which = event.WhichOneof("event")
            if which == "progress":
                report(event.progress)
            elif which == "finished" and event.finished.state == 3:  # TASK_DONE
                for task, result in client.job_results(job, tasks=[event.finished.task]):
                    batch = by_task.get((task.model, task.layer, task.channels))
                    if batch is not None and not _is_done(out, manifest, batch):
                        _save_batch(out, manifest, batch, result)
                        bar.update()

        follow_job(client, job, on_event)
    info, tasks = client.get_job(job)
    if info.state != "SUCCEEDED":
        failed = next((t.error for t in tasks if t.error), info.error)
        raise SweepError(f"job {job} ended {info.state}" + (f": {failed}" if failed else "")
                         + f"; the finished batches are saved in {out} (`kinetoscope jobs show {job}` has the details)")


# -- galleries


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


def _galleries(out: Path, plan: Plan, manifest: dict[str, Any]) -> list[tuple[Path, Path]]:
    """(result, index) per layer; a layer whose batches are unchanged since its last render is left as it is."""
    from .render.cli import render_result  # noqa: PLC0415

    made = []
    for folder, batches in plan.layers().items():
        sources = _digest(json.dumps([[b.file, manifest["batches"][b.file]["sha256"]] for b in batches], sort_keys=True))
        result = out / folder / "result.npz"
        known = manifest["galleries"].get(folder, {})
        index = out / known.get("index", f"{folder}/index.html")
        if known.get("sources") != sources or not result.is_file() or not index.is_file():
            merge_batches([(out / b.file, b.units) for b in batches], result)
            index = render_result(result, out / folder)
            known = {"result": f"{folder}/result.npz", "index": index.relative_to(out).as_posix(), "sources": sources}
            manifest["galleries"][folder] = known
            _save_json(out / MANIFEST, manifest)
            _append_progress(out, {"event": "gallery", "layer": folder, "index": known["index"]})
        made.append((result, index))
    return made


# -- the whole sweep


@dataclass(frozen=True)
class SweepSummary:
    out: Path
    batches: int
    skipped: int
    results: tuple[Path, ...]
    galleries: tuple[Path, ...]
    job: str | None = None
    """The server's job that ran the batches (None when every batch was already saved)."""

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "out": str(self.out), "batches": self.batches, "skipped": self.skipped, "ran": self.batches - self.skipped,
                "galleries": [str(p) for p in self.galleries], "results": [str(p) for p in self.results],
                "manifest": str(self.out / MANIFEST)}

    def describe(self) -> str:
        lines = [f"sweep {self.out}: {self.batches} batches, {self.batches - self.skipped} run, {self.skipped} already done"]
        return "\n".join(lines + [f"gallery: {index}" for index in self.galleries])


def run_sweep(client: "Client", spec: SweepSpec, out: Path | None = None, *, restart: bool = False,
              show_progress: bool = True, detach: bool = False) -> SweepSummary:
    """Validates everything, submits the batches not yet done as one job, saves each as it finishes, then merges and
    renders each layer. `detach`: returns once the job is submitted (summary.job names it)."""
    out = Path(out) if out is not None else spec.out_dir()
    plan = plan_sweep(client, spec)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _open_manifest(out, spec, plan, restart)
    pending = [batch for batch in plan.batches if not _is_done(out, manifest, batch)]
    job = client.submit_job(sweep_request(spec, pending)).id if pending else None
    if detach:
        return SweepSummary(out, len(plan.batches), len(plan.batches) - len(pending), (), (), job)
    try:
        if job is not None:
            _run_batches(client, spec, out, manifest, pending, len(plan.batches), show_progress, job)
    except KeyboardInterrupt:
        done = sum(_is_done(out, manifest, batch) for batch in plan.batches)
        raise SweepInterrupted(f"interrupted: {done} of {len(plan.batches)} batches are saved in {out}; job {job} "
                               "goes on on the server; run the same command again to resume") from None
    made = _galleries(out, plan, manifest)
    return SweepSummary(out, len(plan.batches), len(plan.batches) - len(pending),
                        tuple(r for r, _ in made), tuple(i for _, i in made), job)


def write_job_results(client: "Client", job: str, out: Path) -> SweepSummary:
    """A stored job's finished tasks in the sweep folder layout: OUT/<model>/<layer>/units-A-B.npz, each layer merged
    into result.npz and rendered into index.html, with manifest.json and progress.jsonl as a sweep writes them."""
    info, tasks = client.get_job(job)
    names = {model: client.get_model(model)[0].name for model in info.models}
    folders = {model: folder_name(name if list(names.values()).count(name) == 1 else model) for model, name in names.items()}
    batches = {t.index: Batch(folders[t.model], t.model, t.layer, f"{folders[t.model]}/{folder_name(t.layer)}", t.kind,
                              t.channels) for t in tasks if t.state == "DONE"}
    out.mkdir(parents=True, exist_ok=True)
    params = {"iterations": info.iterations, "settings": [list(s) for s in info.settings]}
    manifest: dict[str, Any] = {"version": MANIFEST_VERSION, "job": job, "params": params,
                                "params_hash": _digest(json.dumps(params, sort_keys=True)),
                                "models": {}, "batches": {}, "galleries": {}}
    old = out / MANIFEST
    if old.is_file():
        try:
            known = json.loads(old.read_text(encoding="utf-8"))
        except ValueError:
            known = {}
        if known.get("job") == job:
            manifest.update({key: known.get(key, {}) for key in ("models", "batches", "galleries")})
    skipped = 0
    pending = [index for index, batch in batches.items() if not _is_done(out, manifest, batch)]
    if pending:
        for task, result in client.job_results(job, tasks=pending):
            _save_batch(out, manifest, batches[task.index], result)
    skipped = len(batches) - len(pending)
    plan = Plan(dict(folders.items()), tuple(batches.values()))
    made = _galleries(out, Plan({f: m for m, f in folders.items()}, plan.batches), manifest) if batches else []
    return SweepSummary(out, len(batches), skipped, tuple(r for r, _ in made), tuple(i for _, i in made), job)
