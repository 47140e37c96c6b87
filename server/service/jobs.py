"""Admission: one queue per device — a few calls running at once, a bounded FIFO wait queue, a record of each job.

The model device's queue runs Maximize and Record calls and stored jobs' tasks; the
import children (processes on the host) have a queue of their own. Both are built from
ServiceLimits in one place (`ServiceLimits.admission`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

T = TypeVar("T")
_LOGGER = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every slot is busy and the wait queue is full."""


class WaitCancelled(Exception):
    """The caller went away (cancel, deadline) while its job waited for a slot."""


@dataclass
class Job:
    """One maximization: where it is, and the optimizer steps it ran (what tests and logs read)."""

    id: int
    description: str
    state: str = "queued"
    """queued → running → done | cancelled | failed."""
    step: int = -1
    """The last optimizer step finished (of the current chunk of samples); -1 before the first."""
    steps_run: int = 0
    """Optimizer steps finished in all chunks."""
    stop_requested_at: int | None = None
    """`steps_run` when the caller's cancel or deadline was first seen."""
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None

    def report_step(self, step: int) -> None:
        self.step = step
        self.steps_run += 1

    def note_stop_request(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = self.steps_run

    @property
    def steps_after_stop(self) -> int | None:
        """Optimizer steps finished after the stop request (at most 1: the step under way then)."""
        if self.stop_requested_at is None:
            return None
        return self.steps_run - self.stop_requested_at


class JobQueue:
    """`slots` jobs run at once; up to `queue_size` more wait in order; one more is refused.

    Admitted work runs on the queue's own `slots` long-lived threads (`on_slot_thread`), never on
    the caller's. On the model device that keeps torch to one OpenMP team per slot: libgomp
    spins briefly at each barrier only while its threads number no more than the CPUs, so
    every other thread that once ran a parallel region (an RPC thread, an executor's worker)
    makes each later small op sleep and wake instead — measured 2.3× slower on two cores.
    """

    def __init__(self, slots: int = 1, queue_size: int = 8, *, history: int = 64, poll_s: float = 0.05,
                 kind: str = "job") -> None:
        if slots < 1 or queue_size < 0:
            raise ValueError(f"JobQueue needs slots >= 1 and queue_size >= 0, got {slots}, {queue_size}")
        self.slots, self.queue_size, self.poll_s, self.kind = slots, queue_size, poll_s, kind
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._running: list[Job] = []
        self._waiting: deque[Job] = deque()
        self.history: deque[Job] = deque(maxlen=history)
        """Finished jobs, oldest first."""
        self._threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"kinetoscope-{kind}-slot")

    def admit(self, description: str, should_stop: Callable[[], bool] = lambda: False) -> Job:
        """A running job, once a slot is free; waits in the queue meanwhile.

        Raises QueueFull at once when the queue is full, WaitCancelled when
        `should_stop()` turns true while waiting. The caller must `finish` the job.
        """
        with self._cond:
            job = Job(next(self._ids), description)
            if len(self._running) < self.slots and not self._waiting:
                return self._start(job)
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(
                    f"the server is busy: {len(self._running)} {self.kind}(s) running and {len(self._waiting)} waiting, "
                    f"which is all it takes ({self.slots} at once, queue of {self.queue_size}); try again later"
                )
            self._waiting.append(job)
            _LOGGER.info("job %d queued (%d waiting): %s", job.id, len(self._waiting), description)
            while not (self._waiting[0] is job and len(self._running) < self.slots):
                if should_stop():
                    self._waiting.remove(job)
                    self._end(job, "cancelled")
                    self._cond.notify_all()
                    raise WaitCancelled(f"job {job.id} left the queue before it started")
                self._cond.wait(self.poll_s)
            self._waiting.popleft()
            return self._start(job)

    def finish(self, job: Job, state: str, error: str | None = None) -> None:
        """Frees the job's slot; `state` is done, cancelled or failed."""
        with self._cond:
            self._running.remove(job)
            job.error = error
            self._end(job, state)
            self._cond.notify_all()
        _LOGGER.info("job %d %s after %d steps%s", job.id, state, job.steps_run,
                     f" (stop requested after step {job.stop_requested_at})" if job.stop_requested_at is not None else "")

    def on_slot_thread(self, work: Callable[[], T]) -> Future[T]:
        """Runs an admitted job's `work()` on one of the queue's slot threads (one per slot: free for every
        admitted job, give or take the moment a finishing job takes to return)."""
        return self._threads.submit(work)

    def run(self, description: str, should_stop: Callable[[], bool], work: Callable[[], T]) -> T:
        """`work()` in a slot, on a slot thread: admitted as `admit` does, finished done, cancelled (when
        `should_stop()` holds) or failed as it ends."""
        job = self.admit(description, should_stop)
        state, error = "failed", None
        try:
            result = self.on_slot_thread(work).result()
            state = "done"
            return result
        except BaseException as exc:
            state, error = ("cancelled" if should_stop() else "failed"), f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.finish(job, state, error)

    def waiting(self) -> list[str]:
        """The descriptions of the jobs waiting, first in line first (tests and logs)."""
        with self._cond:
            return [job.description for job in self._waiting]

    def counts(self) -> tuple[int, int]:
        """(running, waiting)."""
        with self._cond:
            return len(self._running), len(self._waiting)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing runs or waits (False if `timeout` seconds pass first)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._running and not self._waiting, timeout)

    def _start(self, job: Job) -> Job:
        job.state, job.started = "running", time.monotonic()
        self._running.append(job)
        _LOGGER.info("job %d running: %s", job.id, job.description)
        return job

    def _end(self, job: Job, state: str) -> None:
        job.state, job.finished = state, time.monotonic()
        self.history.append(job)


@dataclass(frozen=True)
class Admission:
    """The server's queues: every call that runs a model or an import child waits in one of them."""

    device: JobQueue
    """The model device: Maximize, Record and stored jobs' tasks."""
    imports: JobQueue
    """Import child processes: ImportModel."""
