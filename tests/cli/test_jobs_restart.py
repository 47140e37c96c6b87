"""A `kinetoscope serve` killed with SIGKILL mid-job and started again on the same store finishes the job without
re-running the tasks that had finished."""

from __future__ import annotations

import signal

import pytest

from kinetoscope.client.client import Client
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .console import TOKEN, TRAINED, start_server


def _sweep(iterations: int) -> pb.SubmitJobRequest:
    return pb.SubmitJobRequest(sweep=pb.SweepRequest(
        models=["small"], layers=[pb.SweepLayer(layer="conv_fusion", channels=list(range(6)), batch=1)],
        settings=[pb.RegularizerSetting(kappa=1, gamma=0), pb.RegularizerSetting(kappa=1, gamma=5)],
        options=pb.MaximizeOptions(iterations=iterations, seed=0)))


@pytest.mark.slow  # two server start-ups and an import: about 35 s on 2 cores
def test_killed_server_resumes_the_job_without_rerunning_finished_tasks(tmp_path) -> None:
    store, home = tmp_path / "store", tmp_path / "home"
    server = start_server(store, home)
    try:
        with Client(server.address, token=TOKEN) as client:
            client.import_model(TRAINED, name="small", inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])
            job = client.submit_job(_sweep(48)).id
            finished = set()
            for event in client.watch_job(job, timeout=120):
                if event.HasField("finished"):
                    finished.add(event.finished.task)
                if len(finished) == 2:
                    break
            last_offset = event.offset
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(30)
    finally:
        server.stop()
    server = start_server(store, home)
    try:
        with Client(server.address, token=TOKEN) as client:
            events = list(client.watch_job(job, timeout=120))
            info, tasks = client.get_job(job)
    finally:
        server.stop()
    assert info.state == "SUCCEEDED" and (info.done, info.total) == (6, 6)
    assert [e.offset for e in events] == list(range(len(events)))  # the log kept every event across the kill
    assert events[last_offset].offset == last_offset and events[-1].changed == pb.SUCCEEDED
    runs = {task.index: task.runs for task in tasks}
    assert all(runs[index] == 1 for index in finished), runs
    assert sum(runs.values()) <= 6 + 1, runs  # at most the task running at the kill ran twice
