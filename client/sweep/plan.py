"""The plan: every batch of every job on every model, checked against the models before any work."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from ..targets import find_layer, is_logit_layer, resolve_units, target_kind
from ..types import LayerInfo, ModelInfo
from ..units import UnitSpecError
from .errors import SpecError
from .spec import JobEntry, ModelEntry, SweepSpec

if TYPE_CHECKING:
    from ..client import Client


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
