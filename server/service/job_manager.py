"""JobManager: stored maximization jobs — submit, schedule tasks on an executor, record state and events, resume after a restart."""

from __future__ import annotations

import errno
import hashlib
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from kinetoscope.server.engine import MaximizeConfig
from kinetoscope.server.jobs import JobStore
from kinetoscope.server.jobs.store import unframe
from kinetoscope.server.recordings import RecordingStore
from kinetoscope.server.store import ModelNotFound, ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .errors import LimitExceeded, NotFound, PreconditionFailed, StoreUnavailable
from .executor import Executor, StepNote, TaskFuture, TaskSpec
from .job_plan import plan_job
from .job_records import ENDED, LEFT, TaskRecord, JobRecord
from .limits import ServiceLimits
from .plan import LayerCatalog

_LOGGER = logging.getLogger(__name__)

_POLL_S = 0.5
"""How often a Watch with nothing to send checks that its caller is still there."""


@dataclass
class _Inflight:
    """One running or queued execution of a key, shared by every (job, task) that waits for those results."""

    future: TaskFuture
    waiters: set[tuple[str, int]] = field(default_factory=set)


@dataclass(frozen=True)
class ResultFilter:
    layers: Sequence[str] = ()
    channels: Sequence[int] = ()
    settings: Sequence[int] = ()
    tasks: Sequence[int] = ()


def owner_of(token: str | None) -> str:
    """Whose quota a job counts against: a digest of the caller's token, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""


class JobManager:
    def __init__(self, store: JobStore, models: ModelStore, executor: Executor, limits: ServiceLimits,
                 recordings: RecordingStore | None = None) -> None:
        self.store, self.models, self.executor, self.limits, self.recordings = store, models, executor, limits, recordings
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, JobRecord] = {}
        self._inflight: dict[str, _Inflight] = {}
        self._closing = False

    # -- lifetime
    def resume(self) -> int:
        """Loads every stored job; unfinished ones go back on the executor, skipping tasks whose results are stored."""
        resumed = 0
        for item in self.store.load_records():
            try:
                job = JobRecord.from_json(item)
                job.written = item
            except (KeyError, ValueError, TypeError) as exc:
                _LOGGER.warning("skipping job record %s: %s", item.get("id", "?"), exc)
                continue
            events = []
            for blob in self.store.read_events(job.id):
                try:
                    events.append(pb.JobEvent.FromString(blob))
                except Exception:  # noqa: BLE001 - a damaged tail record is dropped
                    break
            job.replay(events, self.store.has_result)
            with self._lock:
                self._jobs[job.id] = job
                if not job.ended:
                    for task in job.tasks:
                        if task.state == pb.TASK_RUNNING:
                            task.state = pb.TASK_QUEUED
                    self._schedule(job)
                    resumed += 1
            self._persist(job)
        if resumed:
            _LOGGER.info("resumed %d unfinished job(s)", resumed)
        return resumed

    def shutdown(self) -> None:
        """Stops running tasks without marking them cancelled: the next server on this store runs them again."""
        with self._lock:
            self._closing = True
        self.executor.shutdown()

    # -- calls
    def submit(self, request: pb.SubmitJobRequest, owner: str = "") -> pb.JobInfo:
        with self._lock:
            unfinished = sum(1 for job in self._jobs.values() if job.owner == owner and not job.ended)
        if unfinished >= self.limits.max_jobs_per_token:
            raise LimitExceeded(f"{unfinished} of your jobs have not ended, which is all this server takes "
                                f"({self.limits.max_jobs_per_token}); wait for one, or cancel one")
        planned = plan_job(request, self.models, self.limits, self.recordings)
        settings = [(s.kappa, s.gamma) for s in planned[0].request.settings]
        job = JobRecord(
            id=uuid.uuid4().hex[:16], name=request.name, kind=request.WhichOneof("spec"), owner=owner,
            spec=request.SerializeToString(), settings=settings,
            iterations=planned[0].request.options.iterations or MaximizeConfig().iterations,
            tasks=[TaskRecord(t.index, t.model_id, t.layer, list(t.channels), t.first_objective, t.kind, t.key,
                              t.request.SerializeToString()) for t in planned],
        )
        with self._lock:
            self._jobs[job.id] = job
            self._emit(job, changed=pb.QUEUED)
            self._schedule(job)  # the first task need not wait for the record's fsync; Submit's answer does
            _LOGGER.info("job %s: %s, %d task(s)", job.id, job.kind, len(job.tasks))
            submitted = job.info()  # QUEUED, or SUCCEEDED when every task's results were stored already
        try:
            self._persist(job)
        except OSError as exc:
            self._discard(job)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise LimitExceeded(f"the server's disk is full, so the job could not be stored ({exc.strerror}); "
                                    "nothing of it was kept: free space under the server's store and submit again") from exc
            raise StoreUnavailable(f"the job could not be stored ({exc.strerror or exc}); nothing of it was kept: "
                                   "submit again, and tell the server's operator if this persists") from exc
        return submitted

    def get(self, job_id: str) -> pb.JobDetail:
        with self._lock:
            job = self._job(job_id)
            return pb.JobDetail(info=job.info(), tasks=[t.to_proto() for t in job.tasks],
                                spec=pb.SubmitJobRequest.FromString(job.spec))

    def list(self, states: Sequence[int] = (), model: str = "") -> list[pb.JobInfo]:
        model_id = ""
        if model:
            try:
                model_id = self.models.get(model).id
            except ModelNotFound:
                model_id = model
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
            return [job.info() for job in jobs
                    if (not states or job.state in states) and (not model_id or model_id in job.models)]

    def cancel(self, job_id: str, wait_s: float = 10.0) -> pb.JobInfo:
        """Drops queued tasks, stops running ones within an optimizer step; returns once they stopped (or after `wait_s`)."""
        with self._lock:
            job = self._job(job_id)
            if job.ended:
                return job.info()
            job.cancelled = True
            for task in job.tasks:
                if task.state == pb.TASK_QUEUED:
                    self._leave(job, task)
                    task.state = pb.TASK_CANCELLED
                    self._emit(job, finished=pb.TaskFinished(task=task.index, state=pb.TASK_CANCELLED))
                elif task.state == pb.TASK_RUNNING:
                    inflight = self._inflight.get(task.key)
                    if inflight and all(self._jobs[j].cancelled for j, _ in inflight.waiters if j in self._jobs):
                        inflight.future.cancel()
            self._settle(job)
        self._persist(job)  # a cancelled job stays cancelled across a restart
        with self._lock:
            self._changed.wait_for(lambda: job.ended, wait_s)
        self._persist(job)  # the end too, before the caller hears of it
        with self._lock:
            return job.info()

    def _discard(self, job: JobRecord) -> None:
        """A job whose record could not be written: its tasks stop (unless other jobs share them) and it is forgotten."""
        with self._lock:
            job.cancelled = job.deleted = True
            for task in job.tasks:
                self._leave(job, task)
            self._jobs.pop(job.id, None)
            self._changed.notify_all()
        with job.writing:
            self.store.delete_job(job.id)

    def delete(self, job_id: str) -> str:
        with self._lock:
            job = self._job(job_id)
            if not job.ended:
                raise PreconditionFailed(f"job {job_id} is {pb.JobState.Name(job.state)}; cancel it first (Cancel), "
                                         "then delete it")
            del self._jobs[job_id]
            job.deleted = True
            kept = {task.key for other in self._jobs.values() for task in other.tasks}
            self._changed.notify_all()
        with job.writing:  # a record write in progress ends first, and none comes after
            self.store.delete_job(job_id)
        for key in {task.key for task in job.tasks} - kept:
            self.store.delete_result(key)
        return job_id

    def watch(self, job_id: str, from_offset: int, active: Callable[[], bool],
              results: bool = False) -> Iterator[pb.JobEvent]:
        """Events from `from_offset` on, then live ones, until the job ends (or is deleted, or the caller leaves).

        `results`: each task's results come just before the event that reports it done."""
        position = max(0, from_offset)
        while True:
            with self._lock:
                job = self._job(job_id) if position == max(0, from_offset) else self._jobs.get(job_id)
                if job is None:
                    return
                batch = [event for event in job.events if event.offset >= position]
                if not batch:
                    if job.ended:
                        return
                    self._changed.wait(_POLL_S)
                    if not active():
                        return
                    continue
            for event in batch:
                if results and event.WhichOneof("event") == "finished" and event.finished.state == pb.TASK_DONE:
                    yield from self._results_before(job_id, event)
                yield event
            position = batch[-1].offset + 1

    def _results_before(self, job_id: str, finished: pb.JobEvent) -> Iterator[pb.JobEvent]:
        """The finished task's results as events bearing that event's offset, time, state and counts."""
        parts = self.results(job_id, ResultFilter(tasks=[finished.finished.task]))
        try:
            first = next(parts, None)
        except NotFound:  # deleted meanwhile: its finish is still reported, without results
            return
        for part in itertools.chain([first], parts) if first is not None else ():
            yield pb.JobEvent(offset=finished.offset, time=finished.time, state=finished.state, tasks=finished.tasks,
                              result=part)

    def results(self, job_id: str, where: ResultFilter) -> Iterator[pb.JobResultsEvent]:
        with self._lock:
            job = self._job(job_id)
            tasks = [t for t in job.tasks if t.state == pb.TASK_DONE and (not where.tasks or t.index in where.tasks)]
        layers = set(where.layers)
        for task in tasks:
            if layers and not layers & self._layer_names(task):
                continue
            blob = self.store.get_result(task.key)
            if blob is None:
                continue
            chosen = [u for u, c in enumerate(task.channels) if not where.channels or c in where.channels]
            if not chosen:
                continue
            yield pb.JobResultsEvent(task=task.to_proto())
            for raw in unframe(blob):
                event = pb.MaximizeEvent.FromString(raw)
                which = event.WhichOneof("event")
                if which == "result":
                    unit, setting = event.result.unit_index, event.result.setting_index
                    if unit in chosen and (not where.settings or setting in where.settings):
                        yield pb.JobResultsEvent(result=event.result)
                elif which == "data":
                    unit, setting = event.data.unit_index, event.data.setting_index
                    if unit in chosen and (not where.settings or setting in where.settings):
                        yield pb.JobResultsEvent(data=event.data)

    def idle(self, timeout: float) -> bool:
        """True once no job is left unfinished (tests)."""
        with self._lock:
            return self._changed.wait_for(lambda: all(job.ended for job in self._jobs.values()), timeout)

    # -- scheduling (under the lock)
    def _schedule(self, job: JobRecord) -> None:
        for task in job.tasks:
            if task.state != pb.TASK_QUEUED:
                continue
            if self.store.has_result(task.key):
                task.state = pb.TASK_DONE
                self._emit(job, finished=pb.TaskFinished(task=task.index, state=pb.TASK_DONE, cached=True))
            elif not self._closing:
                self._dispatch(job, task)
        self._settle(job)

    def _dispatch(self, job: JobRecord, task: TaskRecord) -> None:
        inflight = self._inflight.get(task.key)
        if inflight is not None and not inflight.future.stop_requested:
            inflight.waiters.add((job.id, task.index))
            return
        key = task.key
        spec = TaskSpec(key, task.model, task.request, label=f"{job.id}/{task.index}",
                        owner=job.owner)
        future = self.executor.submit(spec, on_step=lambda note: self._progress(key, note), on_start=lambda: self._started(key))
        self._inflight[key] = _Inflight(future, {(job.id, task.index)})
        future.add_done_callback(lambda done: self._finished(key, done))

    def _leave(self, job: JobRecord, task: TaskRecord) -> None:
        inflight = self._inflight.get(task.key)
        if inflight is None:
            return
        inflight.waiters.discard((job.id, task.index))
        if not inflight.waiters:
            inflight.future.cancel()

    def _waiters(self, key: str) -> list[tuple[JobRecord, TaskRecord]]:
        inflight = self._inflight.get(key)
        found = []
        for job_id, index in sorted(inflight.waiters) if inflight else ():
            job = self._jobs.get(job_id)
            if job is not None:
                found.append((job, job.tasks[index]))
        return found

    def _started(self, key: str) -> None:
        with self._lock:
            for job, task in self._waiters(key):
                task.state, task.runs = pb.TASK_RUNNING, task.runs + 1
                job.started_at = job.started_at or time.time()
                self._emit(job, started=task.index)  # the log keeps the start; the record catches up at the finish
                self._settle(job)

    def _progress(self, key: str, note: StepNote) -> None:
        with self._lock:
            for job, task in self._waiters(key):
                self._emit(job, progress=pb.TaskProgress(task=task.index, step=note.step, iterations=note.iterations,
                                                         samples_done=note.samples_done, samples_total=note.samples_total))

    def _finished(self, key: str, future: TaskFuture) -> None:
        outcome = future.outcome
        if outcome.state == "done":
            self.store.put_result(key, outcome.blob)
        with self._lock:
            waiters = self._waiters(key)
            if self._inflight.get(key) is not None and self._inflight[key].future is future:
                del self._inflight[key]
            if outcome.state == "shutdown":
                return  # the record keeps the task unfinished; the next server on this store runs it
            state = {"done": pb.TASK_DONE, "failed": pb.TASK_FAILED}.get(outcome.state, pb.TASK_CANCELLED)
            for job, task in waiters:
                if task.state not in LEFT:
                    continue
                if state == pb.TASK_CANCELLED and not job.cancelled:
                    self._dispatch(job, task)  # another job cancelled the shared run; this one still wants it
                    continue
                task.state, task.error = state, outcome.error
                task.seconds = outcome.seconds
                if state == pb.TASK_FAILED and not job.error:
                    job.error = f"task {task.index}: {outcome.error}"
                self._emit(job, finished=pb.TaskFinished(task=task.index, state=state, seconds=outcome.seconds,
                                                         error=outcome.error))
                self._settle(job)
        for job, _ in waiters:  # after the watchers were told; the results themselves are already stored
            self._persist(job)

    def _settle(self, job: JobRecord) -> None:
        state = job.derived_state()
        if state != job.state:
            job.state = state
            if state in ENDED:
                job.finished_at = time.time()
            self._emit(job, changed=state)

    def _emit(self, job: JobRecord, **event) -> None:
        message = pb.JobEvent(offset=job.next_offset, time=time.time(), state=job.derived_state(), tasks=job.counts(),
                              **event)
        job.next_offset += 1
        job.events.append(message)
        self.store.append_events(job.id, [message.SerializeToString()])
        self._changed.notify_all()

    def _persist(self, job: JobRecord) -> None:
        """Writes the job's record as it is now. The write happens outside the manager's lock (a task's start, the
        watchers and other jobs never wait for its fsync), and a writer never waits for that lock, so a caller may
        hold it. The event log, appended under the lock, is ahead of the record or level with it."""
        with self._lock:
            job.snapshots += 1
            snapshot, record = job.snapshots, job.to_json()
        with job.writing:
            if job.deleted or snapshot < job.written_snapshot or record == job.written:
                return
            self.store.save_record(job.id, record)
            job.written, job.written_snapshot = record, snapshot

    def _job(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} on this server (List lists them)")
        return job

    def _layer_names(self, task: TaskRecord) -> set[str]:
        """The task's layer by tensor and node name, so either filters it."""
        try:
            catalog = LayerCatalog(self.models.get(task.model))
            entry = catalog.find(task.layer, "layers")
            return {entry["name"], entry.get("node") or entry["name"]}
        except Exception:  # noqa: BLE001 - a deleted model: its tensor name still filters
            return {task.layer}
