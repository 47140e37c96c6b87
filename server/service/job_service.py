"""JobService: thin translation between kinetoscope.v1 job calls and the JobManager; the runner that executes a task here."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import grpc

from kinetoscope.server import engine
from kinetoscope.server.engine import Cancelled, StepReport
from kinetoscope.server.jobs.store import frame
from kinetoscope.server.library import ModelLibrary
from kinetoscope.server.recordings import RecordingStore
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from .errors import BadRequest, guarded
from .executor import Runner, StepNote, TaskSpec
from .job_manager import JobManager, ResultFilter, owner_of
from .limits import ServiceLimits
from .models import load_imported
from .plan import JOB_PROGRESS_PER_CHUNK, plan_maximize
from .visualization import progress_event, result_events


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, manager: JobManager) -> None:
        self.manager = manager

    @guarded
    def Submit(self, request: pb.SubmitJobRequest, context: grpc.ServicerContext) -> pb.JobInfo:
        return self.manager.submit(request, owner_of(_token(context)))

    @guarded
    def Get(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.JobDetail:
        return self.manager.get(_job_id(request.job))

    @guarded
    def List(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> pb.ListJobsResponse:
        return pb.ListJobsResponse(jobs=self.manager.list(list(request.states), request.model))

    @guarded
    def Watch(self, request: pb.WatchJobRequest, context: grpc.ServicerContext) -> Iterator[pb.JobEvent]:
        if request.from_offset < 0:
            raise BadRequest(f"from_offset must be >= 0, got {request.from_offset}")
        yield from self.manager.watch(_job_id(request.job), request.from_offset, context.is_active, request.results)

    @guarded
    def Cancel(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> pb.JobInfo:
        return self.manager.cancel(_job_id(request.job))

    @guarded
    def Results(self, request: pb.JobResultsRequest, context: grpc.ServicerContext) -> Iterator[pb.JobResultsEvent]:
        where = ResultFilter(list(request.layers), list(request.channels), list(request.settings), list(request.tasks))
        yield from self.manager.results(_job_id(request.job), where)

    @guarded
    def Delete(self, request: pb.DeleteJobRequest, context: grpc.ServicerContext) -> pb.DeleteJobResponse:
        return pb.DeleteJobResponse(id=self.manager.delete(_job_id(request.job)))


def _job_id(text: str) -> str:
    if not text:
        raise BadRequest("name the job: the id Submit returned (List lists them)")
    return text


def _token(context: grpc.ServicerContext) -> str | None:
    sent = dict(context.invocation_metadata() or ()).get("authorization")
    return sent.removeprefix("Bearer ") if isinstance(sent, str) else None


def local_runner(library: ModelLibrary, limits: ServiceLimits, recordings: RecordingStore | None,
                 device: str) -> Runner:
    """Runs a task in this process exactly as Maximize would: the same plan, engine call and result messages."""

    def run(spec: TaskSpec, should_stop: Callable[[], bool], on_step: Callable[[StepNote], None]) -> bytes:
        began = time.monotonic()
        request = pb.MaximizeRequest.FromString(spec.request)
        stored = library.store.get(spec.model_id)
        plan = plan_maximize(request, stored, limits, recordings)
        model = load_imported(library, stored.id)
        if should_stop():
            raise Cancelled("stopped before the first step")

        cadence = plan.cadence(per_chunk=JOB_PROGRESS_PER_CHUNK)

        def report(step: StepReport) -> None:
            if cadence.due(step.step, step.iterations):
                progress = progress_event(step)
                on_step(StepNote(progress.step, progress.iterations, progress.samples_done, progress.samples_total))

        result = engine.maximize(model, plan.objectives, plan.settings, plan.config, reference_max=plan.reference_max,
                                 on_step=report, should_stop=should_stop, device=device)
        events = list(result_events(result, plan.targets))
        summary = pb.MaximizeSummary(warnings=[*plan.warnings, *result.warnings], seconds=time.monotonic() - began)
        events.append(pb.MaximizeEvent(summary=summary))
        return frame(event.SerializeToString() for event in events)

    return run
