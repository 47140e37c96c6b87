"""One interface for running job tasks: submit a plain task description, get back a future that can be cancelled.

A task is picklable data (the model's id and the serialized MaximizeRequest), so an
executor may run it in this process (LocalExecutor, on the JobQueue's device slots) or
ship it elsewhere. A runner turns a task into the bytes of its results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Callable, Protocol

from kinetoscope.server.engine import Cancelled

from .jobs import Job, JobQueue, QueueFull

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    """What a task runs: everything needed to run it anywhere the store's model `model_id` can be read."""

    key: str
    """The content key its results are stored under."""
    model_id: str
    request: bytes
    """A serialized kinetoscope.v1.MaximizeRequest naming the model by id."""
    label: str = ""
    """For logs: job and task."""
    owner: str = ""
    """Whose job it is (a digest of the caller's token): queued tasks are taken in turn between owners."""


@dataclass(frozen=True)
class StepNote:
    """A task's optimizer step, as a runner reports it."""

    step: int
    iterations: int
    samples_done: int
    samples_total: int


@dataclass(frozen=True)
class TaskOutcome:
    state: str
    """done, failed, cancelled (Cancel) or shutdown (the executor stopped; the task should run again later)."""
    blob: bytes | None = None
    """The results (done only)."""
    error: str = ""
    seconds: float = 0.0
    steps_after_stop: int | None = None
    """Optimizer steps finished after the stop was asked for (at most 1), when one was."""


Runner = Callable[[TaskSpec, Callable[[], bool], Callable[[StepNote], None]], bytes]
"""(task, should_stop, on_step) → result bytes; raises Cancelled when should_stop turned true."""


class TaskFuture:
    """A task's eventual outcome; `cancel` drops a queued task and stops a running one within one optimizer step."""

    def __init__(self, spec: TaskSpec, on_step: Callable[[StepNote], None] | None = None,
                 on_start: Callable[[], None] | None = None) -> None:
        self.spec, self.on_step, self.on_start = spec, on_step, on_start
        self._stop = threading.Event()
        self._reason = "cancelled"
        self._done = threading.Event()
        self._callbacks: list[Callable[[TaskFuture], None]] = []
        self._lock = threading.Lock()
        self.outcome: TaskOutcome | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._stop.is_set():
            self._reason = reason
            self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_reason(self) -> str:
        return self._reason

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> TaskOutcome | None:
        self._done.wait(timeout)
        return self.outcome

    def add_done_callback(self, callback: Callable[[TaskFuture], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def set_outcome(self, outcome: TaskOutcome) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.outcome = outcome
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - one bad callback must not keep the others from running
                _LOGGER.exception("task %s: a done callback failed", self.spec.label)


class Executor(Protocol):
    def submit(self, spec: TaskSpec, on_step: Callable[[StepNote], None] | None = None,
               on_start: Callable[[], None] | None = None) -> TaskFuture: ...

    def shutdown(self, timeout: float = 30.0) -> None: ...


class FairQueue:
    """Queued tasks, one FIFO per owner, taken in turn: a user with many tasks queued cannot starve another."""

    def __init__(self) -> None:
        self._by_owner: dict[str, deque[TaskFuture]] = {}
        self._turns: deque[str] = deque()
        """Owners with queued tasks, the next one to take from first."""

    def __len__(self) -> int:
        return sum(len(tasks) for tasks in self._by_owner.values())

    def __bool__(self) -> bool:
        return bool(self._turns)

    def append(self, future: TaskFuture) -> None:
        owner = future.spec.owner
        if owner not in self._by_owner:
            self._by_owner[owner] = deque()
            self._turns.append(owner)
        self._by_owner[owner].append(future)

    def popleft(self) -> TaskFuture:
        owner = self._turns.popleft()
        tasks = self._by_owner[owner]
        future = tasks.popleft()
        if tasks:
            self._turns.append(owner)
        else:
            del self._by_owner[owner]
        return future

    def drain(self) -> list[TaskFuture]:
        everything = [future for owner in self._turns for future in self._by_owner[owner]]
        self._by_owner, self._turns = {}, deque()
        return everything


class QueuedExecutor:
    """What every executor keeps: queued tasks (in turn between owners), the ones running, whether it is stopping.

    Subclasses run worker threads that call `_take` for the next task and `_release` when
    it ended; `submit` and `_stop_tasks` are the same for all of them.
    """

    def __init__(self) -> None:
        self._pending = FairQueue()
        self._running: set[TaskFuture] = set()
        self._cond = threading.Condition()
        self._stopping = False

    def submit(self, spec: TaskSpec, on_step: Callable[[StepNote], None] | None = None,
               on_start: Callable[[], None] | None = None) -> TaskFuture:
        future = TaskFuture(spec, on_step, on_start)
        with self._cond:
            stopping = self._stopping
            if not stopping:
                self._pending.append(future)
                self._cond.notify()
        if stopping:
            future.set_outcome(TaskOutcome("shutdown", error="the server is shutting down"))
        return future

    def queued(self) -> int:
        with self._cond:
            return len(self._pending)

    def _take(self, active: Callable[[], bool] = lambda: True) -> TaskFuture | None:
        """The next task to run, now marked running; None once the executor stops or `active()` turns false.

        A task cancelled while queued gets its outcome here, outside the lock: outcome
        callbacks take the JobManager's lock, which is held around `submit`.
        """
        while True:
            with self._cond:
                while not self._pending and not self._stopping and active():
                    self._cond.wait()
                if self._stopping or not active():
                    return None
                future = self._pending.popleft()
                if not future.stop_requested:
                    self._running.add(future)
                    return future
            future.set_outcome(TaskOutcome(future.stop_reason, error="cancelled before it started"))

    def _release(self, future: TaskFuture) -> None:
        with self._cond:
            self._running.discard(future)

    def _stop_tasks(self) -> None:
        """Stops running tasks (outcome `shutdown`, to run again after a restart) and drops queued ones."""
        with self._cond:
            self._stopping = True
            pending = self._pending.drain()
            running = list(self._running)
            self._cond.notify_all()
        for future in pending:
            future.set_outcome(TaskOutcome("shutdown", error="the server is shutting down"))
        for future in running:
            future.cancel("shutdown")


class LocalExecutor(QueuedExecutor):
    """Tasks in FIFO order on this server's device slots (the JobQueue streaming Maximize calls use too).

    One dispatch thread per slot takes the next task and asks the JobQueue for a slot, so
    jobs and Maximize calls share the device fairly; a full wait queue makes it retry a
    moment later instead of failing the task. An admitted task runs start to end (its
    bookkeeping included) on the queue's slot thread: handing the result back to another
    thread cost milliseconds while torch's threads were still spinning on both cores.
    """

    def __init__(self, runner: Runner, jobs: JobQueue, *, retry_s: float = 0.2) -> None:
        super().__init__()
        self.runner, self.jobs, self.retry_s = runner, jobs, retry_s
        self._threads = [threading.Thread(target=self._dispatch, name=f"kinetoscope-task-{n}", daemon=True)
                         for n in range(jobs.slots)]
        for thread in self._threads:
            thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stops running tasks (outcome `shutdown`, to run again after a restart) and drops queued ones."""
        self._stop_tasks()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _dispatch(self) -> None:
        """Takes the next task only once the last one ended, so that owners take turns at the moment a slot frees."""
        while (future := self._take()) is not None:
            job = self._admit(future)
            if job is None:
                self._end(future, TaskOutcome(future.stop_reason, error="cancelled before it started"))
                continue
            wait_futures([self.jobs.on_slot_thread(lambda future=future, job=job: self._execute(future, job))])

    def _execute(self, future: TaskFuture, job: Job) -> None:
        """On the slot thread: the task, the slot freed, then its outcome handed on (the job manager stores the
        results and announces the end, by which time the queue no longer counts the task as running)."""
        outcome = TaskOutcome("failed", error="the task did not run")
        try:
            outcome = self._run(future, job)
        finally:
            self.jobs.finish(job, {"done": "done", "failed": "failed"}.get(outcome.state, "cancelled"), outcome.error or None)
            self._end(future, outcome)

    def _end(self, future: TaskFuture, outcome: TaskOutcome) -> None:
        self._release(future)
        future.set_outcome(outcome)

    def _admit(self, future: TaskFuture) -> Job | None:
        while not future.stop_requested:
            try:
                return self.jobs.admit(f"task {future.spec.label}", lambda: future.stop_requested)
            except QueueFull:
                time.sleep(self.retry_s)
            except Exception:  # noqa: BLE001 - WaitCancelled: the stop came while waiting
                return None
        return None

    def _run(self, future: TaskFuture, job: Job) -> TaskOutcome:
        began = time.monotonic()
        state, blob, error = "failed", None, ""

        def should_stop() -> bool:
            if future.stop_requested:
                job.note_stop_request()
                return True
            return False

        def on_step(note: StepNote) -> None:
            job.report_step(note.step)
            if future.on_step is not None:
                future.on_step(note)

        try:
            if future.on_start is not None:
                future.on_start()
            blob = self.runner(future.spec, should_stop, on_step)
            state = "done"
        except Cancelled as exc:
            state, error = future.stop_reason, str(exc)
        except Exception as exc:  # noqa: BLE001 - a failed task is reported, never raised into the worker
            error = f"{type(exc).__name__}: {exc}"
            _LOGGER.info("task %s failed: %s", future.spec.label, error, exc_info=not isinstance(exc, (ValueError, KeyError)))
        return TaskOutcome(state, blob, error, time.monotonic() - began, job.steps_after_stop)
