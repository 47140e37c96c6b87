"""A `kinetoscope serve` killed with SIGKILL mid-job and started again on the same store finishes the job without
re-running the tasks that had finished."""

from __future__ import annotations

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .console import kill_mid_job_and_restart


def _sweep(iterations: int) -> pb.SubmitJobRequest:
    return pb.SubmitJobRequest(sweep=pb.SweepRequest(
        models=["small"], layers=[pb.SweepLayer(layer="conv_fusion", channels=list(range(6)), batch=1)],
        settings=[pb.RegularizerSetting(kappa=1, gamma=0), pb.RegularizerSetting(kappa=1, gamma=5)],
        options=pb.MaximizeOptions(iterations=iterations, seed=0)))


def test_killed_server_resumes_the_job_without_rerunning_finished_tasks(tmp_path) -> None:
    seen = kill_mid_job_and_restart(tmp_path / "store", tmp_path / "home", _sweep(48), timeout=120)
    assert seen.info.state == "SUCCEEDED" and (seen.info.done, seen.info.total) == (6, 6)
    assert [e.offset for e in seen.events] == list(range(len(seen.events)))  # the log kept every event across the kill
    assert seen.events[seen.last_offset].offset == seen.last_offset and seen.events[-1].changed == pb.SUCCEEDED
    runs = {task.index: task.runs for task in seen.tasks}
    assert all(runs[index] == 1 for index in seen.finished), runs
    assert sum(runs.values()) <= 6 + 1, runs  # at most the task running at the kill ran twice
