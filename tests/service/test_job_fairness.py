"""Per-user fairness: queued job tasks are taken in turn between owners (tokens), and the per-token limits hold."""

from __future__ import annotations

import threading

import grpc

from kinetoscope.server.service import JobQueue, LocalExecutor, ServiceLimits, TaskSpec
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import code_of, import_trained, start
from .test_jobs_service import follow, sweep


def test_the_executor_takes_queued_tasks_in_turn_between_owners() -> None:
    ran: list[str] = []
    gate = threading.Event()

    def runner(spec, should_stop, on_step) -> bytes:
        if spec.key == "gate":
            assert gate.wait(30)
        ran.append(spec.key)
        return spec.key.encode()

    executor = LocalExecutor(runner, JobQueue(1, 8))
    try:
        first = executor.submit(TaskSpec("gate", "m", b"", owner="z"))
        while executor.queued():  # the one worker holds the gate task
            gate.wait(0.01)
        futures = [executor.submit(TaskSpec(f"a{n}", "m", b"", owner="a")) for n in range(4)]
        futures += [executor.submit(TaskSpec(f"b{n}", "m", b"", owner="b")) for n in range(2)]
        futures += [executor.submit(TaskSpec("c0", "m", b"", owner="c"))]
        assert executor.queued() == 7
        gate.set()
        assert [f.wait(30).state for f in [first, *futures]] == ["done"] * 8
        assert ran == ["gate", "a0", "b0", "c0", "a1", "b1", "a2", "a3"]
        assert [f.outcome.blob for f in futures[:4]] == [b"a0", b"a1", b"a2", b"a3"]  # each owner's own order kept
    finally:
        executor.shutdown()


def _as(token: str) -> tuple:
    return (("authorization", f"Bearer {token}"),)


def test_two_tokens_jobs_alternate_on_one_slot_and_each_token_has_its_own_quota(tmp_path) -> None:
    running = start(tmp_path / "store", limits=ServiceLimits(max_jobs_per_token=1, max_tasks_per_job=4),
                    jobs=JobQueue(1, 8))
    try:
        import_trained(running)
        service = running.job_service
        first = service.Submit(sweep(range(4), iterations=6, batch=1), metadata=_as("alice"), timeout=30)
        second = service.Submit(sweep(range(6, 8), iterations=3, seed=1, batch=1), metadata=_as("bob"), timeout=30)
        code, details = code_of(service.Submit, sweep([9]), metadata=_as("alice"), timeout=30)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "cancel one" in details  # alice's quota, not bob's
        code, details = code_of(service.Submit, sweep(range(5), batch=1), metadata=_as("carol"), timeout=30)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "5 tasks" in details
        assert follow(running, first.id)[-1].changed == pb.SUCCEEDED
        assert follow(running, second.id)[-1].changed == pb.SUCCEEDED
        order = [job.description.split()[1].split("/")[0] for job in running.jobs.history
                 if job.description.startswith("task ")]
        assert sorted(order) == sorted([first.id] * 4 + [second.id] * 2)
        bob_last = max(n for n, job in enumerate(order) if job == second.id)
        assert bob_last <= 4 and order[-1] == first.id, order  # FIFO would run bob's two after alice's four
    finally:
        running.stop()
