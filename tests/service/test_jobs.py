"""Cancellation, deadlines and the job queue: a stopped call stops within one optimizer step and frees its slot."""

from __future__ import annotations

import grpc
import pytest

from kinetoscope.server.service import JobQueue
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import channel_objectives, code_of, collect, import_trained, start

LONG = pb.MaximizeOptions(iterations=10_000, progress_every=1)
SHORT = pb.MaximizeOptions(iterations=4)


def _maximize(options: pb.MaximizeOptions, channel: int = 0) -> pb.MaximizeRequest:
    return pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", [channel]), options=options)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One slot, no queue: a second job while one runs is refused, so a held slot shows at once."""
    running = start(tmp_path_factory.mktemp("single"), jobs=JobQueue(slots=1, queue_size=0))
    import_trained(running)
    yield running
    running.stop()


def _wait_finished(running, count: int):
    assert running.jobs.wait_idle(timeout=120), "the job never finished"
    assert len(running.jobs.history) == count
    return running.jobs.history[-1]


def test_a_cancel_stops_within_one_step_and_frees_the_slot(single) -> None:
    before = len(single.jobs.history)
    call = single.vis.Maximize(_maximize(LONG), timeout=300)
    first = next(call)
    assert first.WhichOneof("event") == "progress" and first.progress.iterations == 10_000
    call.cancel()
    with pytest.raises(grpc.RpcError) as error:
        for _ in call:
            pass
    assert error.value.code() == grpc.StatusCode.CANCELLED

    job = _wait_finished(single, before + 1)
    assert job.state == "cancelled"
    assert job.stop_requested_at is not None
    assert job.steps_after_stop <= 1, f"ran {job.steps_after_stop} steps after the cancel"
    assert job.steps_run < 10_000
    # The slot is free: with no queue, a held slot would refuse this call with RESOURCE_EXHAUSTED.
    got = collect(single.vis.Maximize(_maximize(SHORT), timeout=120))
    assert len(got.results) == 1 and single.jobs.history[-1].state == "done"
    assert single.serving()


def test_an_expired_deadline_stops_the_job_and_the_server_keeps_serving(single) -> None:
    before = len(single.jobs.history)
    code, details = code_of(lambda: list(single.vis.Maximize(_maximize(LONG, channel=1), timeout=1.5)))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    job = _wait_finished(single, before + 1)
    assert job.state == "cancelled" and job.steps_after_stop <= 1 and job.steps_run < 10_000
    assert single.serving()
    assert len(collect(single.vis.Maximize(_maximize(SHORT), timeout=120)).results) == 1


def test_a_busy_server_refuses_with_resource_exhausted(single) -> None:
    call = single.vis.Maximize(_maximize(LONG, channel=2), timeout=300)
    assert next(call).WhichOneof("event") == "progress"  # running now
    code, details = code_of(single.vis.Maximize, _maximize(SHORT), timeout=30)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details
    call.cancel()
    assert single.jobs.wait_idle(timeout=120)
    assert single.serving()


def test_queued_jobs_wait_in_order_and_leave_the_queue_when_cancelled(tmp_path) -> None:
    running = start(tmp_path, jobs=JobQueue(slots=1, queue_size=1, poll_s=0.01))
    try:
        import_trained(running)
        first = running.vis.Maximize(_maximize(LONG), timeout=300)
        assert next(first).WhichOneof("event") == "progress"
        waiting = running.vis.Maximize(_maximize(SHORT, channel=1), timeout=300)
        for _ in range(500):  # the second call reaches the queue (no timing asserted, just a bound on the wait)
            if running.jobs.counts() == (1, 1):
                break
            running.jobs.wait_idle(timeout=0.02)
        assert running.jobs.counts() == (1, 1)
        assert code_of(running.vis.Maximize, _maximize(SHORT), timeout=30)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        waiting.cancel()
        first.cancel()
        assert running.jobs.wait_idle(timeout=120)
        states = sorted(job.state for job in running.jobs.history)
        assert states == ["cancelled", "cancelled"]
        assert min(job.steps_run for job in running.jobs.history) == 0  # the queued one never ran
        assert len(collect(running.vis.Maximize(_maximize(SHORT), timeout=120)).results) == 1
    finally:
        running.stop()
