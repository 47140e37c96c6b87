"""A job and its tasks as the manager holds them, and their JSON form in the JobStore."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from kinetoscope.v1 import kinetoscope_pb2 as pb

MAX_EVENTS = 10_000
"""Events kept per job (in memory and replayed on restart); Watch from an older offset starts at the oldest kept."""

ENDED = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)
LEFT = (pb.TASK_QUEUED, pb.TASK_RUNNING)


@dataclass
class TaskRecord:
    index: int
    model: str
    layer: str
    channels: list[int]
    first_objective: int
    kind: int
    key: str
    request: bytes
    state: int = pb.TASK_QUEUED
    runs: int = 0
    seconds: float = 0.0
    error: str = ""

    def to_json(self) -> dict:
        return {"index": self.index, "model": self.model, "layer": self.layer, "channels": self.channels,
                "first_objective": self.first_objective, "kind": self.kind, "key": self.key,
                "request": base64.b64encode(self.request).decode(), "state": pb.TaskState.Name(self.state),
                "runs": self.runs, "seconds": self.seconds, "error": self.error}

    @classmethod
    def from_json(cls, item: dict) -> "TaskRecord":
        return cls(int(item["index"]), item["model"], item["layer"], [int(c) for c in item["channels"]],
                   int(item["first_objective"]), int(item["kind"]), item["key"], base64.b64decode(item["request"]),
                   pb.TaskState.Value(item["state"]), int(item["runs"]), float(item["seconds"]), item.get("error", ""))

    def to_proto(self) -> pb.JobTask:
        return pb.JobTask(index=self.index, model=self.model, layer=self.layer, channels=self.channels,
                          first_objective=self.first_objective, kind=self.kind, state=self.state, runs=self.runs,
                          seconds=self.seconds, error=self.error, key=self.key)


@dataclass
class JobRecord:
    id: str
    name: str
    kind: str
    owner: str
    """sha256 of the caller's token ("" without one): whose quota of unfinished jobs it counts against."""
    spec: bytes
    tasks: list[TaskRecord]
    settings: list[tuple[float, float]]
    iterations: int
    state: int = pb.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    cancelled: bool = False
    next_offset: int = 0
    events: deque = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    writing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Held while the record is written: one writer at a time, and never while waiting for the manager's lock."""
    snapshots: int = field(default=0, repr=False, compare=False)
    """Records taken of this job so far (under the manager's lock, so in the order of its states)."""
    written: dict | None = field(default=None, repr=False, compare=False)
    """The record as last written to the store, and which snapshot it was: an older one is never written over it."""
    written_snapshot: int = field(default=0, repr=False, compare=False)
    deleted: bool = field(default=False, repr=False, compare=False)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(task.model for task in self.tasks))

    def counts(self) -> pb.JobCounts:
        states = [task.state for task in self.tasks]
        return pb.JobCounts(done=states.count(pb.TASK_DONE), failed=states.count(pb.TASK_FAILED),
                            cancelled=states.count(pb.TASK_CANCELLED),
                            left=sum(state in LEFT for state in states), total=len(states))

    def derived_state(self) -> int:
        """What the tasks say the job is: ended once none is queued or running."""
        states = [task.state for task in self.tasks]
        if not any(state in LEFT for state in states):
            if self.cancelled:
                return pb.CANCELLED
            return pb.FAILED if pb.TASK_FAILED in states else pb.SUCCEEDED
        started = any(state != pb.TASK_QUEUED for state in states) or any(task.runs for task in self.tasks)
        return pb.RUNNING if started else pb.QUEUED

    def info(self) -> pb.JobInfo:
        return pb.JobInfo(
            id=self.id, name=self.name, state=self.state, kind=self.kind, models=self.models, tasks=self.counts(),
            created_at=self.created_at, started_at=self.started_at, finished_at=self.finished_at, error=self.error,
            next_offset=self.next_offset, iterations=self.iterations,
            settings=[pb.RegularizerSetting(kappa=k, gamma=g) for k, g in self.settings],
        )

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind, "owner": self.owner,
                "spec": base64.b64encode(self.spec).decode(), "tasks": [task.to_json() for task in self.tasks],
                "settings": [list(s) for s in self.settings], "iterations": self.iterations,
                "state": pb.JobState.Name(self.state), "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error, "cancelled": self.cancelled,
                "next_offset": self.next_offset}

    def replay(self, events: Iterable[pb.JobEvent], has_result: Callable[[str], bool]) -> None:
        """Brings the record up to its event log. The log is appended before the record is rewritten, so after a kill
        it may hold starts and finishes the record missed: each start counts as a run, and a task the log says
        finished with its results stored is done (it does not run again)."""
        starts: Counter[int] = Counter()
        for event in events:
            self.events.append(event)
            self.next_offset = max(self.next_offset, event.offset + 1)
            which = event.WhichOneof("event")
            if which == "changed":
                self.state = event.changed
                self.finished_at = event.time if event.changed in ENDED else self.finished_at
            elif which == "started" and 0 <= event.started < len(self.tasks):
                starts[event.started] += 1
                self.started_at = self.started_at or event.time
            elif which == "finished" and 0 <= event.finished.task < len(self.tasks):
                task, finished = self.tasks[event.finished.task], event.finished
                if finished.state == pb.TASK_DONE and task.state in LEFT and has_result(task.key):
                    task.state, task.seconds = pb.TASK_DONE, finished.seconds or task.seconds
        for index, count in starts.items():
            self.tasks[index].runs = max(self.tasks[index].runs, count)

    @classmethod
    def from_json(cls, item: dict) -> "JobRecord":
        return cls(
            id=item["id"], name=item["name"], kind=item["kind"], owner=item["owner"], spec=base64.b64decode(item["spec"]),
            tasks=[TaskRecord.from_json(t) for t in item["tasks"]], settings=[(float(k), float(g)) for k, g in item["settings"]],
            iterations=int(item["iterations"]), state=pb.JobState.Value(item["state"]), created_at=float(item["created_at"]),
            started_at=float(item["started_at"]), finished_at=float(item["finished_at"]), error=item["error"],
            cancelled=bool(item["cancelled"]), next_offset=int(item["next_offset"]),
        )
