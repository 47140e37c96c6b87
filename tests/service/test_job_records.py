"""A job's record catches up with its event log after a kill: the log is written first, the record after."""

from __future__ import annotations

from kinetoscope.server.service.job_records import JobRecord, TaskRecord
from kinetoscope.v1 import kinetoscope_pb2 as pb


def _job(tasks: int) -> JobRecord:
    return JobRecord(id="ab" * 8, name="", kind="sweep", owner="", spec=b"", settings=[(1.0, 0.0)], iterations=4,
                     tasks=[TaskRecord(n, "m", "conv", [n], 0, 0, f"{n:02d}" * 8, b"") for n in range(tasks)])


def _event(offset: int, **event) -> pb.JobEvent:
    return pb.JobEvent(offset=offset, time=100.0 + offset, **event)


def test_replay_counts_each_start_and_keeps_a_logged_finish_whose_results_are_stored() -> None:
    job = _job(3)
    job.tasks[2].runs = 2  # the record may already hold runs the log no longer shows in full
    log = [_event(0, changed=pb.QUEUED), _event(1, changed=pb.RUNNING), _event(2, started=0),
           _event(3, finished=pb.TaskFinished(task=0, state=pb.TASK_DONE, seconds=1.5)), _event(4, started=1),
           _event(5, finished=pb.TaskFinished(task=1, state=pb.TASK_DONE, seconds=2.0)), _event(6, started=1),
           _event(7, started=2)]
    stored = {job.tasks[0].key}  # task 1's results never reached the store
    job.replay(log, stored.__contains__)

    assert [t.state for t in job.tasks] == [pb.TASK_DONE, pb.TASK_QUEUED, pb.TASK_QUEUED]
    assert [t.runs for t in job.tasks] == [1, 2, 2]
    assert job.tasks[0].seconds == 1.5
    assert job.state == pb.RUNNING and job.started_at == 102.0 and job.next_offset == 8 and len(job.events) == 8
    assert job.derived_state() == pb.RUNNING  # settling after the replay adds no second RUNNING event


def test_replay_of_an_ended_job_keeps_its_end() -> None:
    job = _job(1)
    log = [_event(0, changed=pb.QUEUED), _event(1, started=0), _event(2, changed=pb.RUNNING),
           _event(3, finished=pb.TaskFinished(task=0, state=pb.TASK_DONE)), _event(4, changed=pb.SUCCEEDED)]
    job.replay(log, lambda key: True)
    assert job.ended and job.state == job.derived_state() == pb.SUCCEEDED and job.finished_at == 104.0
