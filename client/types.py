"""Plain dataclasses the Python client returns (no protobuf or torch in sight)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from kinetoscope.common import InputSpec, Layer, LayerMaxima, MaximizeOutcome, UnitOutcome

InputInfo = InputSpec
"""A model's input as the server describes it: every field filled in (see `kinetoscope.common.InputSpec`)."""
LayerInfo = Layer
"""A layer of the model's catalog, as GetModel lists it (see `kinetoscope.common.Layer`)."""


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    inputs: list[InputInfo]
    layer_count: int
    max_abs_err: float
    max_rel_err: float
    bn_folded: int
    bn_remaining: int
    outputs: list[str]
    class_names: list[str]
    metadata: dict[str, str]

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "inputs": [i.to_json() for i in self.inputs],
            "layers": self.layer_count,
            "parity": {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err},
            "bn_folded": self.bn_folded,
            "bn_remaining": self.bn_remaining,
        }


@dataclass(frozen=True)
class Target:
    """One term of an objective as the server ran it: the layer's tensor name, weight and position resolved."""

    kind: str
    """channel, neuron or logit."""
    layer: str
    channel: int
    position: tuple[int, ...] = ()
    """Neurons only: the index per axis after the channel axis."""
    weight: float = 1.0

    def to_json(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "channel": self.channel, "position": list(self.position),
                "weight": self.weight}

    @classmethod
    def from_json(cls, item: dict) -> "Target":
        return cls(str(item["kind"]), str(item["layer"]), int(item["channel"]),
                   tuple(int(p) for p in item.get("position", ())), float(item.get("weight", 1.0)))


def targets_to_text(terms: tuple[Target, ...]) -> str:
    """One unit's terms as the JSON text result.npz stores in `unit_targets`."""
    return json.dumps([term.to_json() for term in terms])


def targets_from_text(text: str) -> tuple[Target, ...]:
    """The inverse of `targets_to_text`; raises ValueError on text it did not write."""
    try:
        return tuple(Target.from_json(item) for item in json.loads(text))
    except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read unit targets {text[:80]!r}: {exc}") from None


@dataclass(kw_only=True)
class UnitResult(UnitOutcome):
    """One unit under one setting as the server sent it; `objective` is a display label, `target` what to read."""

    unit_index: int
    setting_index: int
    kappa: float
    gamma: float
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    """Optimized inputs (without the batch axis); inputs that do not feed the unit are absent."""
    target: tuple[Target, ...] = ()
    """The objective's terms; most objectives have one."""


@dataclass(kw_only=True)
class MaximizeResult(MaximizeOutcome[UnitResult]):
    """Every unit under every setting (`units` are display labels; `targets` holds what they mean)."""

    model: ModelInfo
    kappas: list[float]
    gammas: list[float]
    seconds: float
    targets: list[tuple[Target, ...]] = field(default_factory=list)
    """Per unit, its objective's terms."""

    def stacked(self, input_name: str) -> np.ndarray:
        """[U, S, *input shape without batch]; zeros where the input does not feed a unit."""
        spec = next(i for i in self.model.inputs if i.name == input_name)
        out = np.zeros((len(self.units), len(self.kappas), *spec.shape[1:]), dtype=np.float32)
        for row in self.results:
            for r in row:
                if input_name in r.inputs:
                    out[r.unit_index, r.setting_index] = r.inputs[input_name]
        return out

    def save_npz(self, path) -> None:
        """The CLI contract's result.npz, plus what rendering needs to label it."""
        names = [i.name for i in self.model.inputs]
        arrays = {name: self.stacked(name) for name in names}
        optimized = np.array([[[name in r.inputs for name in names] for r in row] for row in self.results], dtype=bool)
        np.savez_compressed(
            path, **arrays, units=np.array(self.units), unit_targets=np.array([targets_to_text(t) for t in self.targets]),
            gammas=np.array(self.gammas), kappas=np.array(self.kappas),
            activation=self.activation_table(), input_names=np.array(names),
            input_kinds=np.array([i.kind for i in self.model.inputs]),
            input_layouts=np.array([i.layout for i in self.model.inputs]),
            class_names=np.array(self.model.class_names), optimized=optimized,
        )


@dataclass(frozen=True)
class RecordingInfo:
    id: str
    name: str
    model: str
    """The model's id."""
    clips: int
    layers: list[str]
    created_at: float
    clips_kept: bool = False
    """The clips are stored with the recording, so Analyze can measure units on them."""


@dataclass(kw_only=True)
class LayerRecording(LayerMaxima):
    """One layer's statistics of per-clip maxima as GetRecording sends them (see `kinetoscope.common.LayerMaxima`)."""

    top_ids: list[list[str]]
    """[C][k] the ids of the top clips."""

    def to_json(self) -> dict:
        return {"max": self.max.tolist(), "mean": self.mean.tolist(), "top": self.top_index.tolist()}


@dataclass
class Recording:
    info: RecordingInfo
    layers: dict[str, LayerRecording]

    def to_json(self) -> dict:
        """The `kinetoscope record --json` document."""
        return {"recording": self.info.id, "clips": self.info.clips,
                "layers": {name: layer.to_json() for name, layer in self.layers.items()}}


@dataclass(frozen=True)
class JobInfo:
    """A stored job on the server (JobService), as `kinetoscope jobs show --json` prints it."""

    id: str
    name: str
    state: str
    """QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED."""
    kind: str
    """maximize or sweep."""
    models: list[str]
    done: int
    failed: int
    cancelled: int
    left: int
    total: int
    created_at: float
    started_at: float
    finished_at: float
    error: str
    next_offset: int
    iterations: int
    settings: list[tuple[float, float]]

    @property
    def ended(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED")

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "state": self.state, "kind": self.kind, "models": self.models,
                "tasks": {"done": self.done, "failed": self.failed, "cancelled": self.cancelled, "left": self.left,
                          "total": self.total},
                "created_at": self.created_at, "started_at": self.started_at or None,
                "finished_at": self.finished_at or None, "error": self.error or None, "iterations": self.iterations,
                "settings": [{"kappa": k, "gamma": g} for k, g in self.settings]}


@dataclass(frozen=True)
class JobTask:
    """One task of a job: a batch of units of one model and layer under every setting."""

    index: int
    model: str
    layer: str
    channels: tuple[int, ...]
    first_objective: int
    kind: str
    state: str
    """QUEUED, RUNNING, DONE, FAILED or CANCELLED."""
    runs: int
    seconds: float
    error: str

    def to_json(self) -> dict:
        return {"index": self.index, "model": self.model, "layer": self.layer, "units": list(self.channels),
                "kind": self.kind, "state": self.state, "runs": self.runs, "seconds": self.seconds,
                "error": self.error or None}
