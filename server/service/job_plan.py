"""Split a SubmitJobRequest into tasks (one batch of units of one model and layer × every setting) and key each by content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kinetoscope.server.recordings import RecordingStore
from kinetoscope.server.store import ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .errors import BadRequest, LimitExceeded
from .limits import ServiceLimits
from .plan import LayerCatalog, plan_maximize

DEFAULT_BATCH = 16
KEY_VERSION = b"kinetoscope-task-v1"
"""Changes whenever what a stored result holds changes, so old results are never taken for new ones."""


@dataclass(frozen=True)
class PlannedTask:
    index: int
    model_id: str
    layer: str
    channels: tuple[int, ...]
    first_objective: int
    kind: int
    request: pb.MaximizeRequest
    key: str


def plan_job(request: pb.SubmitJobRequest, models: ModelStore, limits: ServiceLimits,
             recordings: RecordingStore | None) -> list[PlannedTask]:
    """Every task of the job, each checked as Maximize would check it; raises BadRequest naming the task."""
    which = request.WhichOneof("spec")
    if which == "maximize":
        requests = _maximize_tasks(request.maximize, request.batch or DEFAULT_BATCH, models)
    elif which == "sweep":
        if request.batch:
            raise BadRequest("batch applies to maximize jobs; give a sweep's batch per layer (SweepLayer.batch)")
        requests = _sweep_tasks(request.sweep, models)
    else:
        raise BadRequest("give the job's spec: `maximize` (a MaximizeRequest) or `sweep` (a SweepRequest)")
    if request.batch < 0:
        raise BadRequest(f"batch must be >= 0, got {request.batch}")
    if len(requests) > limits.max_tasks_per_job:
        raise LimitExceeded(f"the job splits into {len(requests)} tasks; this server takes at most "
                            f"{limits.max_tasks_per_job} per job (submit it in parts, or raise the batch size)")
    tasks = []
    for index, (first, task_request) in enumerate(requests):
        stored = models.get(task_request.model)
        try:
            plan = plan_maximize(task_request, stored, limits, recordings)
        except BadRequest as exc:
            raise BadRequest(f"task {index} ({stored.name}): {exc}") from None
        head = plan.targets[0].terms[0]
        canonical = pb.MaximizeRequest()
        canonical.CopyFrom(task_request)
        canonical.model = stored.id
        del canonical.objectives[:]
        canonical.objectives.extend(plan.targets)  # resolved: a node name and its tensor name share results
        del canonical.settings[:]
        canonical.settings.extend(pb.RegularizerSetting(kappa=s.kappa, gamma=s.gamma) for s in plan.settings)
        _fill_options(canonical.options, plan.config)
        tasks.append(PlannedTask(index, stored.id, head.layer, tuple(t.terms[0].channel for t in plan.targets), first,
                                 head.kind, canonical, task_key(canonical)))
    return tasks


_OPTIONS = ("iterations", "learning_rate", "final_learning_rate", "alpha", "bound", "v_ratio", "motion_tv_factor",
            "jitter", "init_scale", "seed", "normalize", "objective_weight", "max_batch")


def _fill_options(options: pb.MaximizeOptions, config) -> None:
    """Every option the engine's config fixes, so that `iterations` unset and `iterations = 256` share a key."""
    for name in _OPTIONS:
        value = getattr(config, name, None)
        if value is not None:
            setattr(options, name, value)


def task_key(request: pb.MaximizeRequest) -> str:
    """sha256 of everything that determines a task's results (progress_every excluded: it changes no number)."""
    keyed = pb.MaximizeRequest()
    keyed.CopyFrom(request)
    keyed.options.progress_every = 0
    keyed.options.ClearField("max_batch")  # samples per pass: results do not depend on their batch
    return hashlib.sha256(KEY_VERSION + b"\0" + keyed.SerializeToString(deterministic=True)).hexdigest()


def _maximize_tasks(request: pb.MaximizeRequest, batch: int, models: ModelStore) -> list[tuple[int, pb.MaximizeRequest]]:
    if not request.model:
        raise BadRequest("name the model: its id or name (ListModels lists them)")
    if not request.objectives:
        raise BadRequest("give at least one objective (a Target naming a layer and channel)")
    stored = models.get(request.model)
    parts = []
    for start in range(0, len(request.objectives), batch):
        part = pb.MaximizeRequest()
        part.CopyFrom(request)
        part.model = stored.id
        del part.objectives[:]
        part.objectives.extend(request.objectives[start : start + batch])
        parts.append((start, part))
    return parts


def _sweep_tasks(sweep: pb.SweepRequest, models: ModelStore) -> list[tuple[int, pb.MaximizeRequest]]:
    if not sweep.models:
        raise BadRequest("a sweep needs at least one model (ids or names from ListModels)")
    if not sweep.layers:
        raise BadRequest("a sweep needs at least one layer (SweepLayer with a layer name)")
    if sweep.recording and len(sweep.models) > 1:
        raise BadRequest("a recording belongs to one model: sweep one model with `recording`, or leave it empty")
    parts = []
    for model in sweep.models:
        stored = models.get(model)
        catalog = LayerCatalog(stored)
        for n, layer in enumerate(sweep.layers):
            if layer.model and layer.model not in (stored.id, stored.name):
                continue
            where = f"sweep.layers[{n}]"
            if not layer.layer:
                raise BadRequest(f"{where}: name a layer (a tensor or node name from GetModel)")
            entry = catalog.find(layer.layer, where)
            count = int(entry.get("channels", 0))
            channels = list(layer.channels) or list(range(count))
            bad = [c for c in channels if not 0 <= c < count]
            if bad:
                raise BadRequest(f"{where}: layer {entry['name']!r} of {stored.name} has channels 0..{count - 1}; "
                                 f"{bad[:5]} are out of range")
            if len(set(channels)) != len(channels):
                raise BadRequest(f"{where}: lists a channel more than once; give each unit once")
            if layer.batch < 0:
                raise BadRequest(f"{where}: batch must be >= 0, got {layer.batch}")
            size = layer.batch or DEFAULT_BATCH
            for start in range(0, len(channels), size):
                objectives = [pb.Objective(terms=[pb.Target(kind=layer.kind, layer=entry["name"], channel=c)])
                              for c in channels[start : start + size]]
                parts.append((0, pb.MaximizeRequest(model=stored.id, objectives=objectives, settings=sweep.settings,
                                                    options=sweep.options, recording=sweep.recording)))
    if not parts:
        raise BadRequest("the sweep selects no units: no layer applies to any of its models")
    return parts
