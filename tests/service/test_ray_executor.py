"""Stored jobs on Ray (one local CPU actor): the local executor's numbers, a killed actor loses nothing, Cancel stops the
actor's task; on two nodes, a GPU worker that joins later gets an actor and the CPU actor retires."""

from __future__ import annotations

import logging
import time

import pytest

from kinetoscope.server.jobs.store import unframe
from kinetoscope.server.service import JobQueue, ServiceLimits, TaskSpec
from kinetoscope.server.store import ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import Running, channel_objectives, import_trained, start
from .test_jobs_service import SETTINGS, follow, job_results, sweep

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """One local Ray with one CPU: room for exactly one CPU actor, as on a small machine."""
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    if ray.is_initialized():
        ray.shutdown()


def ray_server(store, cluster) -> Running:
    running = start(store, jobs=JobQueue(1, 8), ray="auto")
    running.model = import_trained(running)
    return running


def executor_of(running: Running):
    return running.server._built.job_manager.executor


def run_sweep(running: Running, request: pb.SubmitJobRequest) -> tuple[pb.JobDetail, list[pb.JobEvent], dict]:
    info = running.job_service.Submit(request, timeout=30)
    events = follow(running, info.id, timeout=300)
    detail = running.job_service.Get(pb.GetJobRequest(job=info.id), timeout=10)
    return detail, events, job_results(running, info.id)[1]


def test_sweep_on_a_ray_actor_gives_every_unit_once_with_the_local_numbers(tmp_path, cluster) -> None:
    local = start(tmp_path / "local", jobs=JobQueue(1, 8))
    try:
        import_trained(local)
        began = time.monotonic()
        _, _, expected = run_sweep(local, sweep(range(16), seed=7))
        local_s = time.monotonic() - began
    finally:
        local.stop()
    running = ray_server(tmp_path / "ray", cluster)
    try:
        executor = executor_of(running)
        assert len(executor.actors) == 1
        began = time.monotonic()
        detail, events, found = run_sweep(running, sweep(range(16), seed=7))
        ray_s = time.monotonic() - began
        assert detail.info.state == pb.SUCCEEDED and events[-1].changed == pb.SUCCEEDED
        assert [t.runs for t in detail.tasks] == [1, 1, 1, 1] and [t.state for t in detail.tasks] == [pb.TASK_DONE] * 4
        finished = sorted(e.finished.task for e in events if e.HasField("finished"))
        assert finished == [0, 1, 2, 3]
        assert any(e.HasField("progress") for e in events)  # the actor's steps reach Watch
        assert sorted(found) == sorted(expected) == [(c, s) for c in range(16) for s in range(2)]
        for key, (result, inputs) in found.items():
            assert result.activation == pytest.approx(expected[key][0].activation, rel=1e-5, abs=1e-6)
            for name, array in inputs.items():
                assert array.shape == expected[key][1][name].shape
                assert abs(array - expected[key][1][name]).max() <= 1e-5
        described = ray.get(executor.actors[0].describe.remote())
        assert described["device"] == "cpu" and described["cached"] == [running.model.id]
        print(f"16-unit sweep, 4 tasks: local {local_s:.1f} s, Ray (1 CPU actor) {ray_s:.1f} s")
    finally:
        running.stop()


def test_a_killed_actor_is_restarted_and_its_task_retried_without_loss_or_duplicates(tmp_path, cluster) -> None:
    running = ray_server(tmp_path / "store", cluster)
    try:
        actor = executor_of(running).actors[0]
        before = ray.get(actor.describe.remote())["instance"]
        info = running.job_service.Submit(sweep(range(8), iterations=60, batch=2, seed=1), timeout=30)
        watch = running.job_service.Watch(pb.WatchJobRequest(job=info.id), timeout=300)
        seen = []
        for event in watch:
            seen.append(event)
            if event.HasField("progress") and event.progress.task == 1:
                break  # the second task is mid-run on the actor
        ray.kill(actor, no_restart=False)
        seen += list(watch)
        assert seen[-1].changed == pb.SUCCEEDED
        finished = sorted(e.finished.task for e in seen if e.HasField("finished"))
        assert finished == [0, 1, 2, 3]  # each task finished exactly once
        detail = running.job_service.Get(pb.GetJobRequest(job=info.id), timeout=10)
        assert [t.state for t in detail.tasks] == [pb.TASK_DONE] * 4
        _, found = job_results(running, info.id)
        assert sorted(found) == [(c, s) for c in range(8) for s in range(2)]
        after = ray.get(actor.describe.remote())["instance"]
        assert after != before  # the actor really was restarted
    finally:
        running.stop()


def test_cancel_stops_the_task_on_the_actor_and_drops_the_queued(tmp_path, cluster) -> None:
    running = ray_server(tmp_path / "store", cluster)
    try:
        info = running.job_service.Submit(sweep(range(8), iterations=5000, batch=2), timeout=30)
        watch = running.job_service.Watch(pb.WatchJobRequest(job=info.id), timeout=120)
        for event in watch:
            if event.HasField("progress"):
                break
        began = time.monotonic()
        cancelled = running.job_service.Cancel(pb.CancelJobRequest(job=info.id), timeout=30)
        stop_s = time.monotonic() - began
        assert cancelled.state == pb.CANCELLED and cancelled.tasks.cancelled == 4
        rest = list(watch)
        assert rest[-1].changed == pb.CANCELLED
        last_step = max(e.progress.step for e in rest if e.HasField("progress")) if any(
            e.HasField("progress") for e in rest) else 0
        assert last_step < 4999
        detail = running.job_service.Get(pb.GetJobRequest(job=info.id), timeout=10)
        assert [t.state for t in detail.tasks] == [pb.TASK_CANCELLED] * 4 and [t.runs for t in detail.tasks] == [1, 0, 0, 0]
        assert stop_s < 10
        # the one actor is free again at once: a short job runs to the end
        quick, _, found = run_sweep(running, sweep([0], iterations=2))
        assert quick.info.state == pb.SUCCEEDED and sorted(found) == [(0, 0), (0, 1)]
        print(f"Cancel returned after {stop_s:.2f} s")
    finally:
        running.stop()


def activations(blob: bytes) -> dict[tuple[int, int], float]:
    events = [pb.MaximizeEvent.FromString(raw) for raw in unframe(blob)]
    return {(e.result.unit_index, e.result.setting_index): e.result.activation for e in events if e.HasField("result")}


def test_two_nodes_a_gpu_worker_joining_later_gets_an_actor_and_the_cpu_actor_retires(tmp_path) -> None:
    from ray.cluster_utils import Cluster

    from kinetoscope.server.service.ray_executor import RayExecutor, RayOptions

    if ray.is_initialized():
        ray.shutdown()  # this test brings its own two-node cluster
    served = start(tmp_path / "store")
    try:
        model = import_trained(served)
    finally:
        served.stop()
    request = pb.MaximizeRequest(model=model.id, objectives=channel_objectives("conv_fusion", [0, 1]), settings=SETTINGS,
                                 options=pb.MaximizeOptions(iterations=4, seed=2)).SerializeToString()
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        ray.init(address=nodes.address, log_to_driver=False, logging_level=logging.ERROR)
        executor = RayExecutor(ModelStore(tmp_path / "store"), None, ServiceLimits(),
                               RayOptions(address=nodes.address, rescale_s=0))
        try:
            assert executor.devices == ["cpu"]
            first = executor.submit(TaskSpec("a", model.id, request)).wait(300)
            assert first.state == "done", first.error
            worker = nodes.add_node(num_cpus=1, num_gpus=1)  # advertises a GPU; its actor falls back to the CPU here
            nodes.wait_for_nodes()
            second = executor.submit(TaskSpec("b", model.id, request)).wait(300)
            assert second.state == "done", second.error
            assert executor.devices == ["cpu", "cuda"] and len(executor.active_actors) == 1
            described = ray.get(executor.active_actors[0].describe.remote())
            assert described["node"] == worker.node_id and described["cached"] == [model.id]
            assert activations(second.blob) == pytest.approx(activations(first.blob), rel=1e-5, abs=1e-6)
            assert len(activations(first.blob)) == 4
        finally:
            executor.shutdown()
    finally:
        ray.shutdown()
        nodes.shutdown()
