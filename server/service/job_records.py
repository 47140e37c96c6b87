"""A job and its tasks as the manager holds them, and their JSON form in the JobStore."""

from __future__ import annotations

import base64
import time
from collections import deque
from dataclasses import dataclass, field

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

    @classmethod
    def from_json(cls, item: dict) -> "JobRecord":
        return cls(
            id=item["id"], name=item["name"], kind=item["kind"], owner=item["owner"], spec=base64.b64decode(item["spec"]),
            tasks=[TaskRecord.from_json(t) for t in item["tasks"]], settings=[(float(k), float(g)) for k, g in item["settings"]],
            iterations=int(item["iterations"]), state=pb.JobState.Value(item["state"]), created_at=float(item["created_at"]),
            started_at=float(item["started_at"]), finished_at=float(item["finished_at"]), error=item["error"],
            cancelled=bool(item["cancelled"]), next_offset=int(item["next_offset"]),
        )
