"""The Python client: a thin wrapper around the kinetoscope.v1 stubs returning numpy and dataclasses.

With no address it starts an embedded server in this process on a local store, so the
same code works against a remote server and on a laptop with nothing running.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import grpc
import numpy as np

from kinetoscope import tensors
from kinetoscope.home import default_store
from kinetoscope.model_files import read_model_files
from kinetoscope.v1 import kinetoscope_pb2 as pb
from kinetoscope.v1 import kinetoscope_pb2_grpc as pb_grpc

from .types import (
    InputInfo, JobInfo, JobTask, LayerInfo, LayerRecording, MaximizeResult, ModelInfo, Recording, RecordingInfo, Target, UnitResult,
)

_MESSAGE_LIMIT = 16 << 20
_ENDED = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)
"""Job states after which a job sends no more events."""


class Client:
    def __init__(self, address: str | None = None, *, store: str | Path | None = None, token: str | None = None,
                 root_certificates: bytes | None = None, device: str = "auto", warm_imports: bool = False,
                 resume_jobs: bool = True) -> None:
        """Connects to `address`, or starts an embedded server on `store` when it is None.

        Embedded only: `warm_imports` starts the import worker at once, for a caller about
        to import (its seconds of start-up then overlap this process's own); `resume_jobs`
        runs the stored jobs an earlier embedded server left unfinished."""
        self._server = None
        if address is None:
            from kinetoscope.server.main import create_server  # noqa: PLC0415 - the embedded case only

            self._server, port = create_server("127.0.0.1:0", store_dir=Path(store or default_store()), device=device,
                                               warm_imports=warm_imports, resume_jobs=resume_jobs)
            self._server.start()
            address = f"127.0.0.1:{port}"
        options = [("grpc.max_receive_message_length", _MESSAGE_LIMIT), ("grpc.max_send_message_length", _MESSAGE_LIMIT)]
        if root_certificates is not None:
            self.channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates), options)
        else:
            self.channel = grpc.insecure_channel(address, options)
        self.address = address
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._model_by_id: dict[str, ModelInfo] = {}
        """ModelInfo of models read by id: an id names a model's bytes, so what it describes never changes."""
        self._job_settings: dict[str, list[tuple[float, float]]] = {}
        """The settings of jobs this client submitted: a job's spec never changes."""
        self.models = pb_grpc.ModelServiceStub(self.channel)
        self.visualization = pb_grpc.VisualizationServiceStub(self.channel)
        self.recordings = pb_grpc.RecordingServiceStub(self.channel)
        self.analysis = pb_grpc.AnalysisServiceStub(self.channel)
        self.job_service = pb_grpc.JobServiceStub(self.channel)

    # -- lifetime
    def close(self) -> None:
        self.channel.close()
        if self._server is not None:
            self._server.stop(None)
            self._server = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- models
    def import_model(self, path: str | Path, *, name: str | None = None, inputs: Sequence[str] = (),
                     chunk_bytes: int = tensors.CHUNK_BYTES) -> ModelInfo:
        """Upload MODEL.onnx with the external-data files it names from its own folder."""
        data, external = read_model_files(Path(path))
        header = pb.ImportHeader(name=name or Path(path).stem, inputs=[_declaration(i) for i in inputs],
                                 model_bytes=len(data), external_files={k: len(v) for k, v in external.items()})
        requests = _upload(header, data, external, chunk_bytes)
        return model_info(self.models.ImportModel(requests, metadata=self._metadata))

    def import_bytes(self, data: bytes, *, name: str, inputs: Sequence[str] = (), external: dict[str, bytes] | None = None,
                     chunk_bytes: int = tensors.CHUNK_BYTES) -> ModelInfo:
        external = external or {}
        header = pb.ImportHeader(name=name, inputs=[_declaration(i) for i in inputs], model_bytes=len(data),
                                 external_files={k: len(v) for k, v in external.items()})
        return model_info(self.models.ImportModel(_upload(header, data, external, chunk_bytes), metadata=self._metadata))

    def list_models(self) -> list[ModelInfo]:
        return [model_info(m) for m in self.models.ListModels(pb.ListModelsRequest(), metadata=self._metadata).models]

    def get_model(self, model: str) -> tuple[ModelInfo, list[LayerInfo]]:
        detail = self.models.GetModel(pb.GetModelRequest(model=model), metadata=self._metadata)
        return model_info(detail.info), [layer_info(layer) for layer in detail.layers]

    def delete_model(self, model: str) -> str:
        return self.models.DeleteModel(pb.DeleteModelRequest(model=model), metadata=self._metadata).id

    # -- maximization
    def maximize_call(self, request: pb.MaximizeRequest, timeout: float | None = None):
        """The raw streaming call (cancel it with `.cancel()`)."""
        return self.visualization.Maximize(request, metadata=self._metadata, timeout=timeout)

    def maximize(self, model: str, objectives: Sequence[pb.Objective], settings: Sequence[tuple[float, float]] = ((1.0, 1.0),),
                 *, options: pb.MaximizeOptions | None = None, recording: str = "", param: str | None = None,
                 progress: Callable[[pb.Progress], None] | None = None, timeout: float | None = None) -> MaximizeResult:
        """`param`: "pixel" (the paper's) or "fourier" (a spatiotemporal spectrum); None leaves `options` as given."""
        # the model's description is asked for beside the call, not before it: one round trip less to wait for
        described = self.models.GetModel.future(pb.GetModelRequest(model=model), metadata=self._metadata)
        request = pb.MaximizeRequest(
            model=model, objectives=list(objectives),
            settings=[pb.RegularizerSetting(kappa=k, gamma=g) for k, g in settings],
            options=options or pb.MaximizeOptions(), recording=recording,
        )
        if param is not None:
            request.options.param = param
        call = self.maximize_call(request, timeout)
        try:
            result = collect_result(None, settings, call, progress)
        except KeyboardInterrupt:
            call.cancel()
            described.cancel()
            raise
        result.model = model_info(described.result().info)
        return result

    # -- recording
    def record(self, model: str, clips: Mapping[str, np.ndarray], labels: Sequence[int] | np.ndarray | None = None,
               ids: Sequence[str] | None = None, *, layers: Sequence[str], top_k: int = 5, name: str = "",
               histogram_bins: int = 0, chunk_bytes: int = tensors.CHUNK_BYTES, timeout: float | None = None) -> RecordingInfo:
        """Streams clips (input name → [N, *input shape without batch]) through `model`, recording `layers`.

        Labels (class indices; negative for none) and ids are optional, one per clip.
        """
        count = clip_count(clips, labels, ids)
        header = pb.RecordHeader(model=model, layers=list(layers), top_k=top_k, name=name, histogram_bins=histogram_bins)
        requests = _record_requests(header, clips, labels, ids, count, chunk_bytes)
        return recording_info(self.recordings.Record(requests, metadata=self._metadata, timeout=timeout))

    def get_recording(self, recording: str) -> Recording:
        reply = self.recordings.GetRecording(pb.GetRecordingRequest(recording=recording), metadata=self._metadata)
        return Recording(info=recording_info(reply.info), layers={l.layer: layer_recording(l) for l in reply.layers})

    def list_recordings(self, model: str = "") -> list[RecordingInfo]:
        reply = self.recordings.ListRecordings(pb.ListRecordingsRequest(model=model), metadata=self._metadata)
        return [recording_info(r) for r in reply.recordings]

    # -- analysis
    def analyze(self, model: str, recording: str, layers: Sequence[str] = (), *, permutations: int = 0,
                alpha: float | None = None, top_classes: int = 0, seed: int = 0, speeds: Sequence[float] = (),
                skip_speed: bool = False, timeout: float | None = None) -> dict:
        """Per-unit selectivity, stream reliance and speed tuning of `layers` (default: the recording's) on the
        recording's clips, as the JSON-able document docs/ANALYSIS.md describes ("Over gRPC and the CLI")."""
        options = pb.AnalyzeOptions(permutations=permutations, top_classes=top_classes, seed=seed, speeds=list(speeds),
                                    skip_speed=skip_speed)
        if alpha is not None:
            options.alpha = alpha
        request = pb.AnalyzeRequest(model=model, recording=recording, layers=list(layers), options=options)
        return analysis_document(self.analysis.Analyze(request, metadata=self._metadata, timeout=timeout))

    def evolution(self, checkpoints: Sequence[str], objectives: Sequence[pb.Objective],
                  settings: Sequence[tuple[float, float]] = ((1.0, 1.0),), *, options: pb.MaximizeOptions | None = None,
                  timeout: float | None = None) -> pb.EvolutionResponse:
        """The same units maximized on each checkpoint (ids or names, in training order), and per unit, setting
        and input how the optimized input changes between checkpoints and how much it varies over time
        (docs/ANALYSIS.md, "Evolution across checkpoints")."""
        asked = pb.MaximizeRequest(objectives=list(objectives),
                                   settings=[pb.RegularizerSetting(kappa=k, gamma=g) for k, g in settings],
                                   options=options or pb.MaximizeOptions())
        request = pb.EvolutionRequest(checkpoints=list(checkpoints), maximize=asked)
        return self.analysis.Evolution(request, metadata=self._metadata, timeout=timeout)

    # -- stored jobs
    def submit_job(self, request: pb.SubmitJobRequest) -> JobInfo:
        """A maximize request or a sweep as a job the server keeps running whether or not this client stays."""
        info = job_info(self.job_service.Submit(request, metadata=self._metadata))
        self._job_settings[info.id] = info.settings
        return info

    def get_job(self, job: str) -> tuple[JobInfo, list[JobTask]]:
        detail = self.job_service.Get(pb.GetJobRequest(job=job), metadata=self._metadata)
        return job_info(detail.info), [job_task(t) for t in detail.tasks]

    def list_jobs(self, states: Sequence[str] = (), model: str = "") -> list[JobInfo]:
        request = pb.ListJobsRequest(states=[pb.JobState.Value(s) for s in states], model=model)
        return [job_info(j) for j in self.job_service.List(request, metadata=self._metadata).jobs]

    def watch_job(self, job: str, from_offset: int = 0, timeout: float | None = None,
                  results: bool = False) -> Iterator[pb.JobEvent]:
        """The job's events from `from_offset`, then live ones until it ends (resume with the last offset + 1).

        `results`: each task's results come just before the event reporting it done, as `result`
        parts (not events: resume from the last event's offset + 1); `JobResultsCollector` assembles them."""
        request = pb.WatchJobRequest(job=job, from_offset=from_offset, results=results)
        return self.job_service.Watch(request, metadata=self._metadata, timeout=timeout)

    def wait_job(self, job: str, on_event: Callable[[pb.JobEvent], None] | None = None,
                 timeout: float | None = None) -> list[tuple[JobTask, MaximizeResult]]:
        """Follows the job to its end on one stream and returns each task's results as it was reported done.

        One call instead of Watch then Results: the results need no second round trip. It returns at the
        event that ends the job, which is the stream's last, without waiting for the stream's own end (a
        millisecond on loopback)."""
        collector = JobResultsCollector(self, job)
        found = []
        stream = self.watch_job(job, timeout=timeout, results=True)
        try:
            for event in stream:
                done = collector.feed(event)
                if done is not None:
                    found.append(done)
                if on_event is not None and event.WhichOneof("event") != "result":
                    on_event(event)
                if event.WhichOneof("event") == "changed" and event.changed in _ENDED:
                    break
        finally:
            stream.cancel()  # a no-op once the stream ended; else the server stops sending
        return found

    def cancel_job(self, job: str) -> JobInfo:
        return job_info(self.job_service.Cancel(pb.CancelJobRequest(job=job), metadata=self._metadata))

    def delete_job(self, job: str) -> str:
        return self.job_service.Delete(pb.DeleteJobRequest(job=job), metadata=self._metadata).id

    def job_results(self, job: str, *, tasks: Sequence[int] = (),
                    layers: Sequence[str] = ()) -> Iterator[tuple[JobTask, MaximizeResult]]:
        """Per finished task (of `tasks` and `layers`, when given), the task and its results as Maximize returns them.

        Whole tasks only: the stub's JobResultsRequest also filters by channel and setting."""
        request = pb.JobResultsRequest(job=job, tasks=list(tasks), layers=list(layers))
        collector = JobResultsCollector(self, job)
        for part in self.job_service.Results(request, metadata=self._metadata):
            done = collector.add(part)
            if done is not None:
                yield done
        done = collector.flush()
        if done is not None:
            yield done

    def job_settings(self, job: str) -> list[tuple[float, float]]:
        """The job's (κ, γ) settings (a job's spec never changes: asked for once)."""
        if job not in self._job_settings:
            self._job_settings[job] = self.get_job(job)[0].settings
        return self._job_settings[job]

    def model_by_id(self, model_id: str) -> ModelInfo:
        if model_id not in self._model_by_id:
            self._model_by_id[model_id] = self.get_model(model_id)[0]
        return self._model_by_id[model_id]


class JobResultsCollector:
    """Assembles a job's result parts (Results' stream, or Watch's with `results`) into one MaximizeResult per task."""

    def __init__(self, client: Client, job: str) -> None:
        self.client, self.job = client, job
        self._task: JobTask | None = None
        self._events: list[pb.MaximizeEvent] = []

    def add(self, part: pb.JobResultsEvent) -> tuple[JobTask, MaximizeResult] | None:
        """Takes one part; returns the previous task's results when this part starts another task."""
        which = part.WhichOneof("event")
        if which == "task":
            done = self.flush()
            self._task, self._events = job_task(part.task), []
            return done
        self._events.append(pb.MaximizeEvent(result=part.result) if which == "result" else pb.MaximizeEvent(data=part.data))
        return None

    def flush(self) -> tuple[JobTask, MaximizeResult] | None:
        """The task being assembled, complete."""
        if self._task is None:
            return None
        task, events = self._task, self._events
        self._task, self._events = None, []
        info = self.client.model_by_id(task.model)
        return task, collect_result(info, self.client.job_settings(self.job), iter(events))

    def feed(self, event: pb.JobEvent) -> tuple[JobTask, MaximizeResult] | None:
        """One event of Watch with `results`: the task's results once the event reporting it done arrives."""
        which = event.WhichOneof("event")
        if which == "result":
            self.add(event.result)
            return None
        if which == "finished" and self._task is not None and self._task.index == event.finished.task:
            return self.flush()
        return None

    def restart(self) -> None:
        """A new stream: the parts of a task cut off before its finished event come again."""
        self._task, self._events = None, []


def job_info(j: pb.JobInfo) -> JobInfo:
    return JobInfo(id=j.id, name=j.name, state=pb.JobState.Name(j.state), kind=j.kind, models=list(j.models),
                   done=j.tasks.done, failed=j.tasks.failed, cancelled=j.tasks.cancelled, left=j.tasks.left,
                   total=j.tasks.total, created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at,
                   error=j.error, next_offset=j.next_offset, iterations=j.iterations,
                   settings=[(s.kappa, s.gamma) for s in j.settings])


def job_task(t: pb.JobTask) -> JobTask:
    return JobTask(index=t.index, model=t.model, layer=t.layer, channels=tuple(t.channels),
                   first_objective=t.first_objective, kind=_KINDS.get(t.kind, str(t.kind)),
                   state=pb.TaskState.Name(t.state).removeprefix("TASK_"), runs=t.runs, seconds=t.seconds, error=t.error)


def clip_count(clips: Mapping[str, np.ndarray], labels=None, ids=None) -> int:
    """The number of clips; raises ValueError when the arrays, labels and ids disagree."""
    if not clips:
        raise ValueError("no clips: give one array [N, ...] per graph input")
    counts = {name: len(array) for name, array in clips.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the inputs hold different numbers of clips: {counts}")
    count = next(iter(counts.values()))
    for what, values in (("labels", labels), ("ids", ids)):
        if values is not None and len(values) != count:
            raise ValueError(f"{count} clips but {len(values)} {what}")
    return count


def _record_requests(header: pb.RecordHeader, clips: Mapping[str, np.ndarray], labels, ids, count: int,
                     chunk_bytes: int) -> Iterator[pb.RecordRequest]:
    yield pb.RecordRequest(header=header)
    for i in range(count):
        label = None if labels is None else int(labels[i])
        start = pb.ClipStart(id="" if ids is None else str(ids[i]))
        if label is not None and label >= 0:
            start.has_label, start.label = True, label
        yield pb.RecordRequest(clip=start)
        for name, array in clips.items():
            for chunk in tensors.to_chunks(name, np.asarray(array[i]), chunk_bytes):
                yield pb.RecordRequest(data=chunk)


def recording_info(r: pb.RecordingInfo) -> RecordingInfo:
    return RecordingInfo(id=r.id, name=r.name, model=r.model, clips=r.clips, layers=list(r.layers), created_at=r.created_at,
                         clips_kept=r.clips_kept)


def analysis_document(reply: pb.AnalyzeResponse) -> dict:
    """The `kinetoscope analyze --json` document: plain dicts, lists, numbers and strings; NaN becomes None."""
    names = list(reply.class_names)

    def class_name(index: int) -> str:
        return names[index] if 0 <= index < len(names) else str(index)

    def unit(u: pb.UnitAnalysis) -> dict:
        top = [int(k) for k in u.top_classes]
        return {
            "channel": u.channel, "selectivity": _number(u.selectivity), "sparseness": _number(u.sparseness),
            "top_class": top[0] if top else None, "top_class_name": class_name(top[0]) if top else None,
            "top_classes": top, "top_class_names": [class_name(k) for k in top],
            "p_value": _number(u.p_value), "label": u.label,
            "class_mean": [_number(v) for v in u.class_mean], "class_max": [_number(v) for v in u.class_max],
            "stream_reliance": {k: _number(v) for k, v in sorted(u.reliance.items())},
            "stream_shares": {k: _number(v) for k, v in sorted(u.shares.items())},
            "stream_label": u.stream_label or None,
            "speed": {"curve": [_number(v) for v in u.speed_curve], "preferred": _number(u.preferred_speed),
                      "invariance": _number(u.speed_invariance)} if len(u.speed_curve) else None,
        }

    return {
        "model": reply.model, "recording": reply.recording, "clips": reply.clips, "class_names": names,
        "alpha": reply.alpha, "permutations": reply.permutations, "speeds": list(reply.speeds),
        "inputs": {layer.layer: list(layer.inputs) for layer in reply.layers},
        "layers": {layer.layer: [unit(u) for u in layer.units] for layer in reply.layers},
    }


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def layer_recording(layer: pb.LayerStatistics) -> LayerRecording:
    k = max((len(top.clips) for top in layer.top), default=0)
    index = np.array([[c.clip_index for c in top.clips] for top in layer.top], np.int64).reshape(len(layer.top), k)
    values = np.array([[c.value for c in top.clips] for top in layer.top], np.float32).reshape(len(layer.top), k)
    return LayerRecording(
        layer=layer.layer, max=np.array(layer.max, np.float32), mean=np.array(layer.mean, np.float32),
        top_index=index, top_ids=[[c.clip_id for c in top.clips] for top in layer.top], top_values=values,
        histogram=tensors.from_tensor(layer.histogram, "histogram"),
        histogram_edges=np.array(layer.histogram_edges, np.float64),
        per_class_max=tensors.from_tensor(layer.per_class_max, "per_class_max"),
        per_class_sum=tensors.from_tensor(layer.per_class_sum, "per_class_sum") if layer.HasField("per_class_sum") else None,
        per_class_count=np.array(layer.per_class_count, np.int64) if layer.HasField("per_class_sum") else None,
    )


def collect_result(info: ModelInfo | None, settings, events: Iterator[pb.MaximizeEvent], progress=None) -> MaximizeResult:
    """Reassemble the event stream into per-unit results with numpy inputs (`info` None: the caller fills
    `model` in)."""
    results: dict[tuple[int, int], UnitResult] = {}
    assemblers: dict[tuple[int, int, str], tensors.ChunkAssembler] = {}
    units: dict[int, str] = {}
    targets: dict[int, tuple[Target, ...]] = {}
    warnings, seconds = [], 0.0
    for event in events:
        which = event.WhichOneof("event")
        if which == "progress" and progress is not None:
            progress(event.progress)
        elif which == "result":
            r = event.result
            units[r.unit_index] = r.objective
            targets[r.unit_index] = unit_targets(r.target)
            results[(r.unit_index, r.setting_index)] = UnitResult(
                unit_index=r.unit_index, setting_index=r.setting_index, objective=r.objective,
                kappa=r.setting.kappa, gamma=r.setting.gamma, activation=r.activation, best_activation=r.best_activation,
                normalizer=r.normalizer, reference_max=r.reference_max if r.has_reference else None,
                stopped=r.stopped or None, losses=np.array(r.losses, np.float32), activations=np.array(r.activations, np.float32),
                target=targets[r.unit_index],
            )
        elif which == "data":
            key = (event.data.unit_index, event.data.setting_index, event.data.chunk.name)
            assembler = assemblers.setdefault(key, tensors.ChunkAssembler(event.data.chunk))
            if assembler.add(event.data.chunk):
                results[key[:2]].inputs[key[2]] = assembler.array()
                del assemblers[key]
        elif which == "summary":
            warnings, seconds = list(event.summary.warnings), event.summary.seconds
    count_units = max(units) + 1 if units else 0
    table = [[results[(u, s)] for s in range(len(settings))] for u in range(count_units)]
    return MaximizeResult(model=info, units=[units[u] for u in range(count_units)],
                          kappas=[float(k) for k, _ in settings], gammas=[float(g) for _, g in settings],
                          results=table, warnings=warnings, seconds=seconds,
                          targets=[targets[u] for u in range(count_units)])


_KINDS = {pb.Target.CHANNEL: "channel", pb.Target.NEURON: "neuron", pb.Target.LOGIT: "logit"}


def unit_targets(objective: pb.Objective) -> tuple[Target, ...]:
    """UnitResult.target as plain dataclasses (a kind this client does not know is named by its number)."""
    return tuple(Target(kind=_KINDS.get(t.kind, str(t.kind)), layer=t.layer, channel=t.channel, position=tuple(t.position),
                        weight=t.weight if t.HasField("weight") else 1.0) for t in objective.terms)


def model_info(m: pb.ModelInfo) -> ModelInfo:
    return ModelInfo(
        id=m.id, name=m.name,
        inputs=[InputInfo(i.name, tuple(i.shape), i.kind, (i.low, i.high), i.layout, tuple(i.inferred)) for i in m.inputs],
        layer_count=m.layer_count, max_abs_err=m.parity.max_abs_err, max_rel_err=m.parity.max_rel_err,
        bn_folded=m.bn_folded, bn_remaining=m.bn_remaining, outputs=list(m.outputs), class_names=list(m.class_names),
        metadata=dict(m.metadata),
    )


def layer_info(layer: pb.Layer) -> LayerInfo:
    return LayerInfo(
        name=layer.name, node=layer.node, op_type=layer.op_type, shape=tuple(layer.shape), axes=layer.axes,
        channels=layer.channels, inputs=tuple(layer.inputs), streams=layer.streams,
        receptive_field={k: dict(v.axes) for k, v in layer.receptive_field.items()},
        stride={k: dict(v.axes) for k, v in layer.stride.items()},
    )


def _declaration(text: str) -> pb.InputDeclaration:
    """`NAME=1x3x224x224[:KIND[:LO..HI]]` → InputDeclaration (checked again by the server)."""
    name, _, rest = text.partition("=")
    shape_text, _, tail = rest.partition(":")
    kind, _, value_range = tail.partition(":")
    declaration = pb.InputDeclaration(name=name, kind=kind)
    if shape_text:
        try:
            declaration.shape.extend(int(d) for d in shape_text.split("x"))
        except ValueError:
            raise ValueError(f"cannot read input declaration {text!r}; expected NAME=1x3x224x224[:KIND[:LO..HI]]") from None
    if value_range:
        low, _, high = value_range.partition("..")
        declaration.has_range, declaration.low, declaration.high = True, float(low), float(high)
    return declaration


def _upload(header: pb.ImportHeader, data: bytes, external: dict[str, bytes], chunk_bytes: int) -> Iterator[pb.ImportModelRequest]:
    yield pb.ImportModelRequest(header=header)
    for file, blob in [("", data), *external.items()]:
        for offset in range(0, len(blob), chunk_bytes):
            yield pb.ImportModelRequest(chunk=pb.FileChunk(file=file, data=blob[offset : offset + chunk_bytes]))
