"""JobService on the zoo's trained two-stream model: results equal to Maximize's, cancel, resumable Watch, many clients."""

from __future__ import annotations

import errno
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from kinetoscope.client.client import Client
from kinetoscope.server.service import JobQueue, ServiceLimits
from kinetoscope.v1 import kinetoscope_pb2 as pb
from kinetoscope.v1 import kinetoscope_pb2_grpc as pb_grpc

from .helpers import Running, channel_objectives, code_of, collect, import_trained, start

ITERS = 8
SETTINGS = [pb.RegularizerSetting(kappa=1, gamma=0), pb.RegularizerSetting(kappa=1, gamma=5)]


def sweep(channels, *, iterations: int = ITERS, seed: int = 0, batch: int = 4, layer: str = "conv_fusion") -> pb.SubmitJobRequest:
    return pb.SubmitJobRequest(name="test", sweep=pb.SweepRequest(
        models=["small"], layers=[pb.SweepLayer(layer=layer, channels=list(channels), batch=batch)], settings=SETTINGS,
        options=pb.MaximizeOptions(iterations=iterations, seed=seed)))


def follow(running: Running, job: str, timeout: float = 120) -> list[pb.JobEvent]:
    return list(running.job_service.Watch(pb.WatchJobRequest(job=job), timeout=timeout))


def job_results(running: Running, job: str, **filters) -> tuple[list[pb.JobTask], dict]:
    """(tasks in the stream, {(channel, setting): (UnitResult, inputs)})."""
    tasks, found, current = [], {}, None
    events = list(running.job_service.Results(pb.JobResultsRequest(job=job, **filters), timeout=60))
    groups: list[list] = []
    for event in events:
        if event.WhichOneof("event") == "task":
            tasks.append(event.task)
            groups.append([])
        else:
            groups[-1].append(pb.MaximizeEvent(result=event.result) if event.HasField("result")
                              else pb.MaximizeEvent(data=event.data))
    for task, group in zip(tasks, groups):
        collected = collect(group)
        for (unit, setting), result in collected.results.items():
            key = (task.channels[unit], setting)
            assert key not in found, f"unit {key} came twice"
            found[key] = (result, collected.inputs[(unit, setting)])
    return tasks, found


@pytest.fixture
def served(tmp_path) -> Running:
    running = start(tmp_path / "store", jobs=JobQueue(1, 8))
    running.model = import_trained(running)
    yield running
    running.stop()


def test_sweep_job_runs_every_unit_once_with_maximize_numbers(served) -> None:
    info = served.job_service.Submit(sweep(range(16)), timeout=30)
    assert info.state == pb.QUEUED and info.tasks.total == 4 and info.kind == "sweep"
    events = follow(served, info.id)
    assert [e.offset for e in events] == list(range(len(events)))
    finished = [e.finished for e in events if e.HasField("finished")]
    assert sorted(f.task for f in finished) == [0, 1, 2, 3] and all(f.state == pb.TASK_DONE for f in finished)
    assert events[-1].changed == pb.SUCCEEDED
    detail = served.job_service.Get(pb.GetJobRequest(job=info.id), timeout=10)
    assert detail.info.state == pb.SUCCEEDED and (detail.info.tasks.done, detail.info.tasks.left) == (4, 0)
    assert [t.runs for t in detail.tasks] == [1, 1, 1, 1]
    _, found = job_results(served, info.id)
    assert sorted(found) == [(c, s) for c in range(16) for s in range(2)]

    direct = collect(served.vis.Maximize(pb.MaximizeRequest(
        model="small", objectives=channel_objectives("conv_fusion", range(16)), settings=SETTINGS,
        options=pb.MaximizeOptions(iterations=ITERS, seed=0)), timeout=120))
    for (channel, setting), (result, inputs) in found.items():
        expected = direct.results[(channel, setting)]
        assert result.activation == pytest.approx(expected.activation, rel=1e-5, abs=1e-6)
        for name, array in inputs.items():
            np.testing.assert_allclose(array, direct.inputs[(channel, setting)][name], rtol=1e-5, atol=1e-5)

    filtered = job_results(served, info.id, channels=[3, 9], settings=[1])[1]
    assert sorted(filtered) == [(3, 1), (9, 1)]
    np.testing.assert_array_equal(filtered[(9, 1)][1]["flow"], found[(9, 1)][1]["flow"])

    again = served.job_service.Submit(sweep(range(16)), timeout=30)  # the same spec: every task's results are stored
    assert again.state == pb.SUCCEEDED and again.tasks.done == 4
    assert [t.runs for t in served.job_service.Get(pb.GetJobRequest(job=again.id), timeout=10).tasks] == [0] * 4
    assert served.job_service.Delete(pb.DeleteJobRequest(job=info.id), timeout=10).id == info.id
    assert len(job_results(served, again.id)[1]) == 32  # shared results outlive the job deleted first


def test_cancel_stops_the_running_task_within_a_step_and_drops_the_queued(served) -> None:
    info = served.job_service.Submit(sweep(range(8), iterations=5000, batch=2), timeout=30)
    watch = served.job_service.Watch(pb.WatchJobRequest(job=info.id), timeout=120)
    for event in watch:
        if event.HasField("progress"):
            break
    cancelled = served.job_service.Cancel(pb.CancelJobRequest(job=info.id), timeout=30)
    assert cancelled.state == pb.CANCELLED and cancelled.tasks.cancelled == 4
    rest = list(watch)
    assert rest[-1].changed == pb.CANCELLED
    detail = served.job_service.Get(pb.GetJobRequest(job=info.id), timeout=10)
    assert [t.state for t in detail.tasks] == [pb.TASK_CANCELLED] * 4 and [t.runs for t in detail.tasks] == [1, 0, 0, 0]
    stopped = [job for job in served.jobs.history if job.description.startswith(f"task {info.id}/0")]
    assert len(stopped) == 1 and stopped[0].state == "cancelled"
    assert stopped[0].steps_run < 5000 and stopped[0].steps_after_stop is not None and stopped[0].steps_after_stop <= 1
    assert served.jobs.wait_idle(5)


def test_watch_resumes_from_an_offset_without_missing_or_repeating(served) -> None:
    info = served.job_service.Submit(sweep(range(8), seed=3, batch=2), timeout=30)
    first = served.job_service.Watch(pb.WatchJobRequest(job=info.id), timeout=120)
    seen = []
    for event in first:
        seen.append(event)
        if len(seen) == 3:
            break
    first.cancel()  # the client goes away mid-job; the job does not
    time.sleep(0.3)
    seen += list(served.job_service.Watch(pb.WatchJobRequest(job=info.id, from_offset=seen[-1].offset + 1), timeout=120))
    everything = follow(served, info.id)
    assert [e.offset for e in seen] == [e.offset for e in everything] == list(range(len(everything)))
    assert [e.SerializeToString() for e in seen] == [e.SerializeToString() for e in everything]
    assert everything[-1].changed == pb.SUCCEEDED
    tail = follow(served, info.id)[-1].offset
    assert list(served.job_service.Watch(pb.WatchJobRequest(job=info.id, from_offset=tail + 1), timeout=10)) == []


def test_watch_with_results_sends_each_task_before_its_finish_and_again_after_a_cut(served) -> None:
    info = served.job_service.Submit(sweep(range(8), seed=4, batch=2), timeout=30)
    stream = list(served.job_service.Watch(pb.WatchJobRequest(job=info.id, results=True), timeout=120))
    events = [e for e in stream if not e.HasField("result")]
    assert [e.SerializeToString() for e in events] == [e.SerializeToString() for e in follow(served, info.id)]
    # each DONE finish is preceded by its task's results, which bear that event's offset
    for position, event in enumerate(stream):
        if event.HasField("finished"):
            parts = []
            for before in reversed(stream[:position]):
                if not before.HasField("result"):
                    break
                parts.insert(0, before)
            assert parts and parts[0].result.task.index == event.finished.task
            assert {p.offset for p in parts} == {event.offset} and {p.state for p in parts} == {event.state}
            assert [p.result.WhichOneof("event") for p in parts] == ["task"] + ["result", "data", "data"] * 4  # 2 units × 2 settings; rgb, flow
    with Client(f"127.0.0.1:{served.port}") as client:
        streamed = client.wait_job(info.id)
        stored = list(client.job_results(info.id))
    assert [task.index for task, _ in streamed] == sorted(task.index for task, _ in streamed) == [0, 1, 2, 3]
    for (task, result), (same_task, same) in zip(streamed, stored):
        assert task == same_task
        assert [[r.activation for r in row] for row in result.results] == [[r.activation for r in row] for row in same.results]
        for row, same_row in zip(result.results, same.results):
            for unit, same_unit in zip(row, same_row):
                for name, array in unit.inputs.items():
                    np.testing.assert_array_equal(array, same_unit.inputs[name])

    # cut off among a task's results: resuming after the last event sends that task's results again, whole
    cut = served.job_service.Watch(pb.WatchJobRequest(job=info.id, results=True), timeout=120)
    last_event, cut_task = None, None
    for event in cut:
        if event.HasField("result"):
            if event.result.HasField("task"):
                cut_task = event.result.task.index
            elif event.result.HasField("result") and event.result.result.unit_index == 1 and cut_task == 2:
                break
        else:
            last_event = event
    cut.cancel()
    again = list(served.job_service.Watch(pb.WatchJobRequest(job=info.id, from_offset=last_event.offset + 1,
                                                             results=True), timeout=120))
    assert again[0].HasField("result") and again[0].result.task.index == 2
    assert [e.SerializeToString() for e in again] == [e.SerializeToString() for e in stream[stream.index(again[0]):]]


class _Dropped(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


class _DroppingClient(Client):
    """Its first Watch breaks off in the middle of a task's results, as a dropped connection would."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.positions: list[int] = []
        self.last_event = -1

    def watch_job(self, job, from_offset=0, timeout=None, results=False):
        self.positions.append(from_offset)
        stream = super().watch_job(job, from_offset, timeout, results)
        if len(self.positions) > 1:
            return stream

        def cut():
            for event in stream:
                if event.HasField("result") and event.result.HasField("result") and event.result.result.unit_index == 1:
                    stream.cancel()
                    raise _Dropped()
                if not event.HasField("result"):
                    self.last_event = event.offset
                yield event
        return cut()


def test_a_sweep_client_cut_off_among_results_gets_each_task_once_and_whole(served) -> None:
    from kinetoscope.client.sweep import follow_job

    info = served.job_service.Submit(sweep(range(8), seed=6, batch=2), timeout=30)
    follow(served, info.id)
    with _DroppingClient(f"127.0.0.1:{served.port}") as client:
        events, got = [], []
        follow_job(client, info.id, events.append, on_result=lambda task, result: got.append((task, result)))
        stored = {task.index: result for task, result in client.job_results(info.id)}
    assert [e.offset for e in events] == list(range(len(events)))  # every event once, none of them a result part
    assert client.positions == [0, client.last_event + 1]  # resumed after the last event received, not a result part
    assert sorted(task.index for task, _ in got) == [0, 1, 2, 3]
    for task, result in got:
        assert [[r.activation for r in row] for row in result.results] == \
            [[r.activation for r in row] for row in stored[task.index].results]


def test_a_job_whose_record_cannot_be_written_is_refused_stopped_and_forgotten(served, monkeypatch) -> None:
    from kinetoscope.server.jobs import JobStore

    def full(self, job_id, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(JobStore, "save_record", full)
        code, message = code_of(served.job_service.Submit, sweep(range(8), iterations=5000, batch=2, seed=8), timeout=30)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "disk is full" in message and "submit again" in message
    assert served.job_service.List(pb.ListJobsRequest(), timeout=10).jobs == []
    assert list((served.store / "jobs" / "records").iterdir()) == []
    assert served.jobs.wait_idle(10)  # the task it had started stopped; nothing is left running for it
    started = [job for job in served.jobs.history if job.description.startswith("task ")]
    assert all(job.state == "cancelled" and job.steps_run < 5000 for job in started), started

    info = served.job_service.Submit(sweep(range(2), seed=8, batch=2), timeout=30)  # the server goes on
    assert follow(served, info.id)[-1].changed == pb.SUCCEEDED


CLIENTS = 16
RSS_TOLERANCE = 64 << 20
"""What a round of clients may leave behind in the server's resident memory, once the first round warmed it up
(caches, thread stacks, allocator arenas): a leak of one job's results per client would pass it."""


def resident_bytes() -> int:
    """This process's resident set (the server runs in it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def client_round(served: Running, round_: int) -> dict[int, tuple[str, int, list[int]]]:
    """CLIENTS threads at once, each submitting a two-unit job, watching it (every third cancels it first)."""
    outcomes: dict[int, tuple[str, int, list[int]]] = {}
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            channels = [(2 * n + round_) % 64, (2 * n + 1 + round_) % 64]
            info = served.job_service.Submit(sweep(channels, iterations=2, seed=n + 100 * round_, batch=1), timeout=60)
            if n % 3 == 2:
                served.job_service.Cancel(pb.CancelJobRequest(job=info.id), timeout=60)
            events = follow(served, info.id, timeout=120)
            outcomes[n] = (info.id, events[-1].changed, [e.offset for e in events])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert not errors and len(outcomes) == CLIENTS, errors
    for n, (job, state, offsets) in outcomes.items():
        assert offsets == list(range(len(offsets)))
        assert state == (pb.CANCELLED if n % 3 == 2 else pb.SUCCEEDED), n
        if state == pb.SUCCEEDED:
            channels = sorted({(2 * n + round_) % 64, (2 * n + 1 + round_) % 64})
            assert sorted(job_results(served, job)[1]) == [(c, s) for c in channels for s in range(2)]
    return outcomes


def test_sixteen_clients_submit_watch_and_cancel_at_once_and_memory_returns_to_its_baseline(served) -> None:
    first = client_round(served, 0)  # warms the server up: model cache, threads, allocator arenas
    assert served.jobs.wait_idle(30)
    gc.collect()
    baseline = resident_bytes()
    second = client_round(served, 1)
    assert served.jobs.wait_idle(30)
    gc.collect()
    grown = resident_bytes() - baseline
    listed = [job.id for job in served.job_service.List(pb.ListJobsRequest(), timeout=10).jobs]
    assert sorted(listed) == sorted(job for job, _, _ in [*first.values(), *second.values()])  # none lost or doubled
    done = served.job_service.List(pb.ListJobsRequest(states=[pb.SUCCEEDED], model="small"), timeout=10).jobs
    assert len(done) == 2 * sum(1 for n in range(CLIENTS) if n % 3 != 2)
    assert grown < RSS_TOLERANCE, f"the server's memory grew by {grown / (1 << 20):.1f} MiB over a round of {CLIENTS} clients"


def test_errors_and_limits(tmp_path) -> None:
    running = start(tmp_path / "store", limits=ServiceLimits(max_jobs_per_token=1, max_tasks_per_job=3))
    try:
        import_trained(running)
        service = running.job_service
        assert code_of(service.Get, pb.GetJobRequest(job="0123456789abcdef"))[0] == grpc.StatusCode.NOT_FOUND
        code, details = code_of(service.Submit, sweep([0], layer="no_such_layer"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "no_such_layer" in details
        code, details = code_of(service.Submit, sweep(range(8), batch=2))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "4 tasks" in details
        assert code_of(service.Submit, pb.SubmitJobRequest())[0] == grpc.StatusCode.INVALID_ARGUMENT
        info = service.Submit(sweep([0], iterations=5000), timeout=30)
        code, details = code_of(service.Submit, sweep([1]))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "cancel one" in details
        assert code_of(service.Delete, pb.DeleteJobRequest(job=info.id))[0] == grpc.StatusCode.FAILED_PRECONDITION
        assert service.Cancel(pb.CancelJobRequest(job=info.id), timeout=30).state == pb.CANCELLED
        maximize = service.Submit(pb.SubmitJobRequest(maximize=pb.MaximizeRequest(
            model="small", objectives=channel_objectives("conv_fusion", [5, 6, 7]), settings=SETTINGS,
            options=pb.MaximizeOptions(iterations=2)), batch=2), timeout=30)
        assert maximize.kind == "maximize" and maximize.tasks.total == 2
        follow(running, maximize.id)
        tasks, found = job_results(running, maximize.id)
        assert [t.first_objective for t in tasks] == [0, 2] and sorted(found) == [(c, s) for c in (5, 6, 7) for s in (0, 1)]
    finally:
        running.stop()


class _LingeringWatch(pb_grpc.JobServiceServicer):
    """A Watch that ends the job, then holds its stream open until the caller leaves."""

    def __init__(self) -> None:
        self.left = threading.Event()

    def Watch(self, request, context):  # noqa: N802 - gRPC's method name
        yield pb.JobEvent(offset=0, changed=pb.RUNNING)
        yield pb.JobEvent(offset=1, changed=pb.SUCCEEDED)
        for _ in range(100):
            if not context.is_active():
                self.left.set()
                return
            time.sleep(0.05)


def test_wait_job_returns_at_the_event_that_ends_the_job_and_leaves_the_stream() -> None:
    servicer = _LingeringWatch()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_JobServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        client = Client(f"127.0.0.1:{port}")
        seen: list[pb.JobEvent] = []
        began = time.monotonic()
        assert client.wait_job("0123456789abcdef", on_event=seen.append, timeout=30) == []
        assert time.monotonic() - began < 2.0, "not held until the server's 5 s stream ends"
        assert [event.changed for event in seen] == [pb.RUNNING, pb.SUCCEEDED]
        assert servicer.left.wait(5), "the server saw the caller leave"
        client.close()
    finally:
        server.stop(None)
