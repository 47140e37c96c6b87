"""VisualizationService: check a Maximize request, queue it, run the engine, stream progress then results in chunks."""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import grpc

from kinetoscope.server import engine
from kinetoscope.server.engine import Cancelled, MaximizeResult, StepReport
from kinetoscope.server.library import ModelLibrary
from kinetoscope.server.recordings import RecordingStore
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from . import wire
from .errors import BadRequest, guarded
from .jobs import Job, JobQueue
from .limits import ServiceLimits
from .models import load_imported
from .plan import MaximizePlan, plan_maximize

_DONE = object()
_MAX_PENDING_PROGRESS = 64
"""Progress events waiting for a slow reader beyond this are dropped (results never are)."""


class VisualizationServicer(pb_grpc.VisualizationServiceServicer):
    def __init__(self, library: ModelLibrary, jobs: JobQueue, limits: ServiceLimits, device: str = "cpu",
                 recordings: RecordingStore | None = None) -> None:
        self.library, self.jobs, self.limits, self.device = library, jobs, limits, device
        self.recordings = recordings

    @guarded
    def Maximize(self, request: pb.MaximizeRequest, context: grpc.ServicerContext) -> Iterator[pb.MaximizeEvent]:
        began = time.monotonic()
        if not request.model:
            raise BadRequest("name the model: its id or name (ListModels lists them)")
        stored = self.library.store.get(request.model)
        plan = plan_maximize(request, stored, self.limits, self.recordings)
        stop = StopSignal(context)
        job = self.jobs.admit(plan.describe(stored), stop.is_set)
        stop.job = job
        run = EngineRun(self.library, stored.id, plan, job, self.jobs, stop, self.device)
        yield from run.progress()
        result = run.outcome()
        yield from result_events(result, plan.targets)
        warnings = [*plan.warnings, *result.warnings]
        yield pb.MaximizeEvent(summary=pb.MaximizeSummary(warnings=warnings, seconds=time.monotonic() - began))


class StopSignal:
    """True once the call is cancelled, its deadline passes or it ends: what the engine checks every step."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self._event = threading.Event()
        self.job: Job | None = None
        self.reason: str | None = None
        if not context.add_callback(self._ended):
            self._trip("the call had already ended")

    def _ended(self) -> None:
        self._trip("the call ended (cancelled, deadline or finished)")

    def is_set(self) -> bool:
        if not self._event.is_set():
            remaining = self._context.time_remaining()
            if not self._context.is_active():
                self._trip("the call is no longer active")
            elif remaining is not None and remaining <= 0:
                self._trip("the deadline passed")
        return self._event.is_set()

    def _trip(self, reason: str) -> None:
        if self._event.is_set():
            return
        self.reason = reason
        if self.job is not None and self.job.state == "running":
            self.job.note_stop_request()
        self._event.set()


class EngineRun:
    """The engine on the device queue's slot thread (the handler thread streams its events); frees the job slot when
    the engine returns."""

    def __init__(self, library: ModelLibrary, model_id: str, plan: MaximizePlan, job: Job, jobs: JobQueue,
                 stop: StopSignal, device: str) -> None:
        self.library, self.model_id, self.plan, self.job, self.jobs, self.stop, self.device = (
            library, model_id, plan, job, jobs, stop, device)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.cadence = plan.cadence()
        self.result: MaximizeResult | None = None
        self.error: BaseException | None = None
        try:
            jobs.on_slot_thread(self._work)
        except BaseException as exc:
            jobs.finish(job, "failed", repr(exc))
            raise

    def progress(self) -> Iterator[pb.MaximizeEvent]:
        """Progress events until the engine returns or stops."""
        while (item := self.events.get()) is not _DONE:
            yield item

    def outcome(self) -> MaximizeResult:
        if self.error is not None:
            if isinstance(self.error, (ValueError, KeyError)):
                raise BadRequest(f"the engine refused the request: {self.error}") from self.error
            raise self.error
        assert self.result is not None
        return self.result

    def _work(self) -> None:
        state = "failed"
        try:
            model = load_imported(self.library, self.model_id)
            if self.stop.is_set():
                raise Cancelled("stopped before the first step")
            self.result = engine.maximize(
                model, self.plan.objectives, self.plan.settings, self.plan.config,
                reference_max=self.plan.reference_max, on_step=self._on_step, should_stop=self.stop.is_set, device=self.device,
            )
            state = "done"
        except Cancelled as exc:
            self.error, state = exc, "cancelled"
        except BaseException as exc:  # noqa: BLE001 - handed to the handler thread, which maps it to a status (and logs bugs)
            self.error = exc
        finally:
            self.jobs.finish(self.job, state, None if self.error is None else f"{type(self.error).__name__}: {self.error}")
            self.events.put(_DONE)

    def _on_step(self, report: StepReport) -> None:
        self.job.report_step(report.step)
        if self.cadence.due(report.step, report.iterations) and self.events.qsize() < _MAX_PENDING_PROGRESS:
            self.events.put(pb.MaximizeEvent(progress=progress_event(report)))


def progress_event(report: StepReport) -> pb.Progress:
    """Counts samples over the whole call: the engine reports those of earlier chunks; a chunk's last step finishes its own."""
    chunk = len(report.activation)
    finished = report.done + (chunk if report.step == report.iterations - 1 else 0)
    return pb.Progress(
        step=report.step, iterations=report.iterations, samples_done=finished, samples_total=report.total,
        activation=report.activation.tolist(), loss=report.loss.tolist(), chunk_start=report.done,
    )


def result_events(result: MaximizeResult, targets: list[pb.Objective]) -> Iterator[pb.MaximizeEvent]:
    """Per unit and setting: a UnitResult (with its objective's resolved `target`), then the ResultChunks of each
    optimized input it names."""
    for u, row in enumerate(result.results):
        for s, unit in enumerate(row):
            names = [name for name, array in unit.inputs.items() if array is not None]
            yield pb.MaximizeEvent(result=pb.UnitResult(
                unit_index=u, setting_index=s, objective=result.units[u],
                setting=pb.RegularizerSetting(kappa=unit.setting.kappa, gamma=unit.setting.gamma),
                activation=unit.activation, best_activation=unit.best_activation, normalizer=unit.normalizer,
                has_reference=unit.reference_max is not None, reference_max=unit.reference_max or 0.0,
                stopped=unit.stopped or "", losses=unit.losses.tolist(), activations=unit.activations.tolist(),
                optimized_inputs=names, target=targets[u],
            ))
            for name in names:
                for chunk in wire.to_chunks(name, unit.inputs[name]):
                    yield pb.MaximizeEvent(data=pb.ResultChunk(unit_index=u, setting_index=s, chunk=chunk))
