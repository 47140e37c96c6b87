"""A server restarted on the same store keeps its models, and imports them again to maximize; a `serve --ray` killed
with SIGKILL mid-job resumes the job on restart without re-running finished tasks."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import channel_objectives, collect, import_trained, start


def test_a_restart_keeps_the_store(tmp_path) -> None:
    first = start(tmp_path)
    try:
        info = import_trained(first, name="kept")
        before = first.models.GetModel(pb.GetModelRequest(model="kept"), timeout=10)
    finally:
        first.stop()

    second = start(tmp_path)
    try:
        assert [(m.id, m.name) for m in second.models.ListModels(pb.ListModelsRequest(), timeout=10).models] == [(info.id, "kept")]
        after = second.models.GetModel(pb.GetModelRequest(model=info.id), timeout=10)
        assert after == before
        request = pb.MaximizeRequest(model="kept", objectives=channel_objectives("conv_fusion", [5]),
                                     options=pb.MaximizeOptions(iterations=4))
        got = collect(second.vis.Maximize(request, timeout=120))  # the new server imports the stored bytes again
        assert got.inputs[(0, 0)]["flow"].shape == (20, 32, 32)
        assert second.serving()
    finally:
        second.stop()


def _ray_processes() -> set[int]:
    """Pids of Ray's own processes on this machine (raylet, GCS, workers, agents)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"ray::" in command or b"/ray/" in command and (b"raylet" in command or b"gcs_server" in command
                                                                or b"dashboard" in command or b"runtime_env" in command):
                found.add(int(entry.name))
    return found


@pytest.fixture
def no_ray_left_behind():
    """A server killed with SIGKILL cannot stop its local Ray; what it leaves running is stopped here."""
    before = _ray_processes()
    yield
    for pid in _ray_processes() - before:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_a_ray_server_killed_mid_job_resumes_it_without_rerunning_finished_tasks(tmp_path, no_ray_left_behind) -> None:
    pytest.importorskip("ray")
    from tests.cli.console import kill_mid_job_and_restart

    request = pb.SubmitJobRequest(sweep=pb.SweepRequest(
        models=["small"], layers=[pb.SweepLayer(layer="conv_fusion", channels=list(range(6)), batch=1)],
        settings=[pb.RegularizerSetting(kappa=1, gamma=0)], options=pb.MaximizeOptions(iterations=40, seed=0)))
    seen = kill_mid_job_and_restart(tmp_path / "store", tmp_path / "home", request, "--ray", "auto", "--device", "cpu")
    assert seen.info.state == "SUCCEEDED" and (seen.info.done, seen.info.total) == (6, 6)
    assert [e.offset for e in seen.events] == list(range(len(seen.events))) and seen.events[-1].changed == pb.SUCCEEDED
    runs = {task.index: task.runs for task in seen.tasks}
    assert all(runs[index] == 1 for index in seen.finished), runs
    assert sum(runs.values()) <= 6 + 1, runs  # at most the task running at the kill ran twice
    for text in seen.logs:
        assert "(raylet)" not in text and "retries remaining" not in text and "Started a local Ray" not in text, text
