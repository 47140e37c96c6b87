"""Stored jobs on Ray: a 64-unit sweep on one local actor and on a two-node cluster gives every unit once with the local
executor's numbers; a killed actor loses nothing; Cancel stops every running task within a step; Ray prints nothing on
the driver's terminal. Slow: a GPU worker that joins later gets an actor and the CPU actor retires."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import numpy as np
import pytest

from kinetoscope.server.jobs.store import unframe
from kinetoscope.server.service import JobQueue, ServiceLimits, TaskSpec
from kinetoscope.server.service.job_plan import plan_job
from kinetoscope.server.store import ModelStore
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import Running, channel_objectives, collect, import_trained, start
from .test_jobs_service import SETTINGS, follow, job_results, sweep

ray = pytest.importorskip("ray")

UNITS = 64
"""Every channel of conv_fusion, in four tasks of 16."""


def big_sweep() -> pb.SubmitJobRequest:
    return sweep(range(UNITS), iterations=3, seed=7, batch=16)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple:
    """(the store with the trained model, {(channel, setting): (UnitResult, inputs)}) from the local executor."""
    store = tmp_path_factory.mktemp("reference")
    local = start(store, jobs=JobQueue(1, 8))
    try:
        import_trained(local)
        info = local.job_service.Submit(big_sweep(), timeout=30)
        assert follow(local, info.id, timeout=300)[-1].changed == pb.SUCCEEDED
        found = job_results(local, info.id)[1]
    finally:
        local.stop()
    assert sorted(found) == [(c, s) for c in range(UNITS) for s in range(2)]
    return store, found


def same_numbers(found: dict, expected: dict) -> None:
    assert sorted(found) == sorted(expected)
    for key, (result, inputs) in found.items():
        assert result.activation == pytest.approx(expected[key][0].activation, rel=1e-5, abs=1e-6), key
        assert sorted(inputs) == sorted(expected[key][1])
        for name, array in inputs.items():
            np.testing.assert_allclose(array, expected[key][1][name], rtol=1e-5, atol=1e-5)


def quiet(captured) -> None:
    """Nothing from Ray reached the terminal: no raylet, worker or retry lines."""
    text = captured.out + captured.err
    for marker in ("(raylet)", "(DeviceWorker", "retries remaining", "Started a local Ray instance"):
        assert marker not in text, text[-2000:]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray with one CPU: room for exactly one CPU actor, as on a small machine."""
    if ray.is_initialized():
        ray.shutdown()
    from kinetoscope.server.service.ray_executor import start_local

    start_local(ray, 1, {"log_to_driver": False, "logging_level": logging.ERROR})  # once more if Ray misses its wait
    yield ray
    if ray.is_initialized():
        ray.shutdown()


def two_nodes(worker: bool):
    """A `ray.cluster_utils.Cluster` with a one-CPU head (and a one-CPU worker node), tried once more where a raylet
    missed Ray's own 30 s start-up wait, as `start_local` does for the server: a busy 2-core machine can."""
    from ray.cluster_utils import Cluster  # noqa: PLC0415

    for attempt in (1, 2):
        nodes = Cluster(initialize_head=False)
        try:
            nodes.add_node(num_cpus=1, include_dashboard=False)
            if worker:
                nodes.add_node(num_cpus=1)
                nodes.wait_for_nodes()
            return nodes
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for a raylet that did not register
            nodes.shutdown()
            if "timed out" not in str(exc).lower() or attempt == 2:
                raise


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


def task_results(blob: bytes, channels) -> dict:
    """A task's stored results by (channel, setting), as job_results gives them."""
    collected = collect(pb.MaximizeEvent.FromString(raw) for raw in unframe(blob))
    return {(channels[u], s): (result, collected.inputs[(u, s)]) for (u, s), result in collected.results.items()}


def test_a_64_unit_sweep_on_a_ray_actor_gives_every_unit_once_with_the_local_numbers(tmp_path, reference, cluster,
                                                                                      capfd) -> None:
    running = ray_server(tmp_path / "ray", cluster)
    try:
        executor = executor_of(running)
        assert len(executor.actors) == 1
        detail, events, found = run_sweep(running, big_sweep())
        assert detail.info.state == pb.SUCCEEDED and events[-1].changed == pb.SUCCEEDED
        assert [t.runs for t in detail.tasks] == [1] * 4 and [t.state for t in detail.tasks] == [pb.TASK_DONE] * 4
        assert sorted(e.finished.task for e in events if e.HasField("finished")) == [0, 1, 2, 3]
        assert any(e.HasField("progress") for e in events)  # the actor's steps reach Watch
        same_numbers(found, reference[1])
        described = ray.get(executor.actors[0].describe.remote())
        assert described["device"] == "cpu" and described["cached"] == [running.model.id]
        # the actor's malloc keeps freed blocks, as `kinetoscope serve` does for its own slots (fewer page faults)
        assert described["retains_freed_memory"] == sys.platform.startswith("linux")
        assert described["niceness"] == 0  # Ray's workers start at 15, behind every other process on the node
    finally:
        running.stop()
    quiet(capfd.readouterr())


def test_a_killed_actor_is_restarted_and_its_task_retried_without_loss_or_duplicates(tmp_path, cluster, capfd) -> None:
    running = ray_server(tmp_path / "store", cluster)
    try:
        actor = executor_of(running).actors[0]
        before = ray.get(actor.describe.remote())["instance"]
        info = running.job_service.Submit(sweep(range(8), iterations=40, batch=2, seed=1), timeout=30)
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
    quiet(capfd.readouterr())  # Ray's "task failed, retries remaining" went to the server log


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
        # on the actor, the task stopped within one optimizer step of the stop reaching it
        outcome = cancel_once_running([executor_of(running)], running.model.id)[0]
        assert outcome.state == "cancelled" and outcome.steps_after_stop is not None and outcome.steps_after_stop <= 1
    finally:
        running.stop()


def long_task(model_id: str, channel: int) -> bytes:
    """A task that runs until stopped, reporting every optimizer step."""
    return pb.MaximizeRequest(model=model_id, objectives=channel_objectives("conv_fusion", [channel]),
                              options=pb.MaximizeOptions(iterations=5000, progress_every=1)).SerializeToString()


def cancel_once_running(executors: list, model_id: str, count: int = 1) -> list:
    """Submits `count` long tasks, cancels each once every one has reported a step; their outcomes."""
    stepped = [threading.Event() for _ in range(count)]
    futures = [executors[n % len(executors)].submit(TaskSpec(f"long-{n}", model_id, long_task(model_id, n)),
                                                     on_step=lambda note, n=n: stepped[n].set())
               for n in range(count)]
    for event in stepped:
        assert event.wait(120), "a long task never reported a step"
    for future in futures:
        future.cancel()
    return [future.wait(60) for future in futures]


def test_a_64_unit_sweep_on_two_nodes_gives_every_unit_once_and_cancel_stops_every_running_task(reference, capfd) -> None:
    from kinetoscope.server.service.ray_executor import RayExecutor, RayOptions

    if ray.is_initialized():
        ray.shutdown()  # this test brings its own two-node cluster
    store, expected = reference
    models = ModelStore(store)
    tasks = plan_job(big_sweep(), models, ServiceLimits(), None)
    nodes = two_nodes(worker=True)
    try:
        worker = next(iter(nodes.worker_nodes))
        ray.init(address=nodes.address, log_to_driver=False, logging_level=logging.ERROR)
        executor = RayExecutor(models, None, ServiceLimits(), RayOptions(address=nodes.address, actors=2))
        try:
            futures = [executor.submit(TaskSpec(t.key, t.model_id, t.request.SerializeToString(), label=str(t.index)))
                       for t in tasks]
            outcomes = [future.wait(300) for future in futures]
            assert [o.state for o in outcomes] == ["done"] * 4, [o.error for o in outcomes]
            found: dict = {}
            for task, outcome in zip(tasks, outcomes):
                part = task_results(outcome.blob, task.channels)
                assert not set(part) & set(found)  # no unit twice
                found.update(part)
            same_numbers(found, expected)
            described = [ray.get(actor.describe.remote()) for actor in executor.actors]
            assert {d["node"] for d in described} == {nodes.head_node.node_id, worker.node_id}  # both nodes worked
            assert all(d["cached"] == [tasks[0].model_id] for d in described)
            # both nodes are this machine: its cores shared between the two actors, not two threads each on two cores
            assert [d["torch_threads"] for d in described] == [max(1, (os.cpu_count() or 1) // 2)] * 2
            stopped = cancel_once_running([executor], tasks[0].model_id, count=2)  # one running on each actor
            assert [o.state for o in stopped] == ["cancelled"] * 2
            assert all(o.steps_after_stop is not None and o.steps_after_stop <= 1 for o in stopped), stopped
        finally:
            executor.shutdown()
    finally:
        ray.shutdown()
        nodes.shutdown()
    quiet(capfd.readouterr())


def activations(blob: bytes) -> dict[tuple[int, int], float]:
    events = [pb.MaximizeEvent.FromString(raw) for raw in unframe(blob)]
    return {(e.result.unit_index, e.result.setting_index): e.result.activation for e in events if e.HasField("result")}


@pytest.mark.slow  # a node joins mid-test: about 30 s on 2 cores
def test_two_nodes_a_gpu_worker_joining_later_gets_an_actor_and_the_cpu_actor_retires(tmp_path) -> None:
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
    nodes = two_nodes(worker=False)
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
