"""AnalysisService: the per-unit measures of docs/ANALYSIS.md on a recording's kept clips.

The plan (what to measure, checked before any forward pass) is made here; the numbers
come from `engine.analysis` (selectivity, stream reliance, speed tuning) unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc
import numpy as np

from kinetoscope.server.library import ModelLibrary
from kinetoscope.server.recordings import KeptClips, RecordingNotFound, RecordingStore, StoredRecording
from kinetoscope.server.store import StoredModel
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from . import wire
from .errors import BadRequest, LimitExceeded, NotFound, PreconditionFailed, guarded
from .jobs import JobQueue
from .limits import ServiceLimits
from .models import load_imported
from .plan import LayerCatalog, plan_maximize
from .visualization import StopSignal


DEFAULT_PERMUTATIONS = 1000
MAX_PERMUTATIONS = 100_000
DEFAULT_ALPHA = 0.01
DEFAULT_TOP_CLASSES = 3
MAX_TOP_CLASSES = 100
DEFAULT_SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
MAX_SPEEDS = 16


@dataclass(frozen=True)
class AnalysisPlan:
    """An Analyze request checked against the store: everything the engine needs but the clips."""

    model: StoredModel
    recording: StoredRecording
    layers: list[str]
    """Tensor names, in the order asked, without repeats."""
    permutations: int
    alpha: float
    seed: int
    top_classes: int
    speeds: tuple[float, ...]
    """Empty: no speed tuning."""
    class_names: list[str]


def plan_analysis(request: pb.AnalyzeRequest, model: StoredModel, recording: StoredRecording,
                  limits: ServiceLimits) -> AnalysisPlan:
    """Checks the request's layers and options, and that the recording can be analyzed with this model."""
    if recording.model != model.id:
        raise BadRequest(f"recording {recording.id} is of model {recording.meta.get('model_name') or recording.model}, "
                         f"not {model.name!r}; analyze it with its own model (ListRecordings lists a model's recordings)")
    asked = list(request.layers) or recording.layers
    if len(asked) > limits.max_record_layers:
        raise LimitExceeded(f"{len(asked)} layers asked; this server analyzes at most {limits.max_record_layers} per call")
    catalog = LayerCatalog(model)
    layers = list(dict.fromkeys(catalog.find(name, f"layers[{i}]")["name"] for i, name in enumerate(asked)))
    options = request.options
    permutations = options.permutations or DEFAULT_PERMUTATIONS
    if not 0 < permutations <= MAX_PERMUTATIONS:
        raise BadRequest(f"permutations must be in 1..{MAX_PERMUTATIONS} (0 takes {DEFAULT_PERMUTATIONS}), got {permutations}")
    alpha = options.alpha if options.HasField("alpha") else DEFAULT_ALPHA
    if not 0 < alpha < 1:
        raise BadRequest(f"alpha must be in (0, 1), got {alpha}")
    if alpha * (permutations + 1) < 1:
        raise BadRequest(f"{permutations} permutations cannot reach p <= {alpha}; use at least {math.ceil(1 / alpha) - 1}")
    top_classes = options.top_classes or DEFAULT_TOP_CLASSES
    if not 0 < top_classes <= MAX_TOP_CLASSES:
        raise BadRequest(f"top_classes must be in 1..{MAX_TOP_CLASSES} (0 takes {DEFAULT_TOP_CLASSES}), got {top_classes}")
    speeds = () if options.skip_speed else tuple(options.speeds) or DEFAULT_SPEEDS
    if speeds and (len(speeds) < 2 or len(speeds) > MAX_SPEEDS):
        raise BadRequest(f"give 2..{MAX_SPEEDS} replay speeds, got {len(speeds)}")
    if any(not (math.isfinite(s) and s > 0) for s in speeds):
        raise BadRequest(f"replay speeds must be positive numbers, got {list(speeds)}")
    if not recording.clips_kept:
        raise PreconditionFailed(
            f"recording {recording.id} kept no clips to measure units on: its clips passed the server's limit of "
            f"{recording.meta.get('max_kept_clip_bytes', limits.max_kept_clip_bytes):,} bytes, or it was stored "
            "before recordings kept their clips; record the clips again (fewer of them if they passed the limit)")
    names = wire.class_names({str(k): str(v) for k, v in (model.meta.get("metadata") or {}).items()})
    return AnalysisPlan(model, recording, layers, permutations, float(alpha), int(options.seed), top_classes,
                        tuple(float(s) for s in speeds), names)


def labelled(clips: KeptClips, recording: StoredRecording) -> KeptClips:
    """The clips that carry a label; refuses a recording without clips of at least two classes."""
    keep = clips.labels >= 0
    classes = np.unique(clips.labels[keep])
    if len(classes) < 2:
        found = "no labelled clips" if not keep.any() else f"labelled clips of class {int(classes[0])} only"
        raise PreconditionFailed(f"recording {recording.id} has {found}; class selectivity compares classes: record "
                                 "clips labelled with at least two classes (a \"labels\" array in the clips file)")
    return KeptClips({name: array[keep] for name, array in clips.inputs.items()}, clips.labels[keep],
                     [i for i, k in zip(clips.ids, keep) if k])


class AnalysisServicer(pb_grpc.AnalysisServiceServicer):
    def __init__(self, library: ModelLibrary, recordings: RecordingStore, limits: ServiceLimits, device: str = "cpu",
                 jobs: JobQueue | None = None) -> None:
        self.library, self.recordings, self.limits, self.device = library, recordings, limits, device
        self.jobs = jobs or limits.admission().device
        """The device's queue, shared with Maximize and Record: an analysis runs the model in a device slot."""

    @guarded
    def Analyze(self, request: pb.AnalyzeRequest, context: grpc.ServicerContext) -> pb.AnalyzeResponse:
        if not request.model:
            raise BadRequest("name the model: its id or name (ListModels lists them)")
        if not request.recording:
            raise BadRequest("name the recording: its id or name (ListRecordings lists them)")
        stored = self.library.store.get(request.model)
        try:
            recording = self.recordings.get(request.recording)
        except RecordingNotFound as exc:
            raise NotFound(str(exc)) from None
        plan = plan_analysis(request, stored, recording, self.limits)
        clips = labelled(recording.kept_clips(), recording)
        reply = self.jobs.run(
            f"analyze {stored.name or stored.id}: {len(plan.layers)} layer(s)", StopSignal(context).is_set,
            lambda: analyze(plan, clips, load_imported(self.library, stored.id), self.device))
        size = reply.ByteSize()
        if size > self.limits.max_recording_bytes:
            raise LimitExceeded(f"the analysis takes {size:,} bytes; this server answers with at most "
                                f"{self.limits.max_recording_bytes:,} per call (analyze fewer layers at once)")
        return reply

    @guarded
    def Evolution(self, request: pb.EvolutionRequest, context: grpc.ServicerContext) -> pb.EvolutionResponse:
        names = list(request.checkpoints)
        if len(names) < 2:
            raise BadRequest(f"give at least two checkpoints (model ids or names in training order), got {len(names)}")
        if request.maximize.recording:
            raise BadRequest("leave maximize.recording empty: a recording's maxima belong to one checkpoint")
        stored = [self.library.store.get(name) for name in names]
        plans = []
        for model in stored:
            asked = pb.MaximizeRequest()
            asked.CopyFrom(request.maximize)
            asked.model = model.id
            plans.append(plan_maximize(asked, model, self.limits, self.recordings))
        return self.jobs.run(
            f"evolution over {len(stored)} checkpoints", StopSignal(context).is_set,
            lambda: checkpoint_evolution(stored, plans, [load_imported(self.library, m.id) for m in stored], self.device))


def checkpoint_evolution(stored: list[StoredModel], plans: list, models: list, device: str) -> pb.EvolutionResponse:
    """Maximizes each checkpoint's plan (the same units and settings), then measures change and temporal variation."""
    from kinetoscope.server import engine  # noqa: PLC0415 - torch, only to maximize
    from kinetoscope.server.engine.analysis.evolution import evolution  # noqa: PLC0415

    geometry = [[(i.name, tuple(i.shape), i.kind) for i in model.inputs] for model in models]
    for model, found in zip(stored[1:], geometry[1:]):
        if found != geometry[0]:
            raise BadRequest(f"checkpoint {model.name} ({model.id}) takes inputs {found}, but {stored[0].name} takes "
                             f"{geometry[0]}: checkpoints of one training run share their inputs")
    optimized = []
    for model, plan in zip(models, plans):
        result = engine.maximize(model, plan.objectives, plan.settings, plan.config, device=device)
        optimized.append({spec.name: result.stacked(spec.name) for spec in model.inputs})
    found = evolution(optimized, models[0].inputs, [m.id for m in stored])
    plan = plans[0]
    units = []
    for u, target in enumerate(plan.targets):
        for s in range(len(plan.settings)):
            inputs = [pb.InputEvolution(input=name, change=measured.change[:, u, s].tolist(),
                                        variation=measured.variation[:, u, s].tolist())
                      for name, measured in found.items()]
            units.append(pb.UnitEvolution(unit=u, setting=s, target=target, inputs=inputs))
    settings = [pb.RegularizerSetting(kappa=setting.kappa, gamma=setting.gamma) for setting in plan.settings]
    return pb.EvolutionResponse(checkpoints=[m.id for m in stored], settings=settings, units=units)


def analyze(plan: AnalysisPlan, clips: KeptClips, model, device: str) -> pb.AnalyzeResponse:
    """Runs the engine's measures for the plan's layers on the labelled clips and packs them per unit."""
    from kinetoscope.server.engine.analysis.reliance import stream_reliance  # noqa: PLC0415 - torch, only to analyze
    from kinetoscope.server.engine.analysis.responses import response_function  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.selectivity import PermutationConfig, selectivity  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.speed import speed_tuning  # noqa: PLC0415

    classes = len(plan.class_names) or int(clips.labels.max()) + 1
    config = PermutationConfig(alpha=plan.alpha, permutations=plan.permutations, seed=plan.seed)
    try:
        function = response_function(model, plan.layers, device=device)
        responses = function(clips.inputs)
        found = {name: selectivity(responses[name], clips.labels, classes, top_k=min(plan.top_classes, classes),
                                   config=config) for name in plan.layers}
        reliance = stream_reliance(function, clips.inputs) if len(model.inputs) > 1 else {}
        speed = speed_tuning(function, clips.inputs, plan.speeds) if plan.speeds else {}
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    layers = [layer_analysis(layer.name, tuple(layer.inputs), found[layer.name], reliance.get(layer.name),
                             speed.get(layer.name)) for layer in function.layers]
    return pb.AnalyzeResponse(model=plan.model.id, recording=plan.recording.id, clips=clips.count,
                              class_names=plan.class_names, speeds=list(plan.speeds), alpha=plan.alpha,
                              permutations=plan.permutations, layers=layers)


def layer_analysis(layer: str, inputs: tuple[str, ...], found, reliance, speed) -> pb.LayerAnalysis:
    """One layer's units as UnitAnalysis messages (reliance and speed may be None: not measured)."""
    units = []
    for c in range(found.index.shape[0]):
        unit = pb.UnitAnalysis(
            channel=c, class_mean=found.class_mean[:, c].tolist(), class_max=found.class_max[:, c].tolist(),
            selectivity=float(found.index[c]), sparseness=float(found.sparseness[c]),
            top_classes=[int(k) for k in found.top_classes[c]], p_value=float(found.p_value[c]), label=found.labels[c])
        if reliance is not None:
            unit.reliance.update({name: float(value[c]) for name, value in reliance.reliance.items()})
            unit.shares.update({name: float(value[c]) for name, value in reliance.shares.items()})
            unit.stream_label = reliance.labels[c]
        if speed is not None:
            unit.speed_curve.extend(speed.curve[:, c].tolist())
            unit.preferred_speed = float(speed.preferred[c])
            unit.speed_invariance = float(speed.invariance[c])
        units.append(unit)
    return pb.LayerAnalysis(layer=layer, inputs=list(inputs), units=units)
