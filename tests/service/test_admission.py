"""One queue per device: Record and Maximize share the device's slots and wait queue, imports wait in theirs; a queued
call that is cancelled leaves its queue; a full queue is RESOURCE_EXHAUSTED."""

from __future__ import annotations

import threading

import grpc
import pytest

from kinetoscope import tensors
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.server.service import JobQueue, ServiceLimits
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import TRAINED, channel_objectives, code_of, collect, declarations, import_trained, start, upload

LONG = pb.MaximizeOptions(iterations=10_000, progress_every=1)
SHORT = pb.MaximizeOptions(iterations=3)
LAYER = "/conv_fusion/relu/Relu"


def _maximize(options: pb.MaximizeOptions, channel: int = 0) -> pb.MaximizeRequest:
    return pb.MaximizeRequest(model="small", objectives=channel_objectives("conv_fusion", [channel]), options=options)


def _record(clips: int, gate: threading.Event | None = None):
    """A Record stream of `clips` clips; with `gate`, it holds after the first clip until the gate opens."""
    rgb, flow, _ = SyntheticActions().batch(clips, seed=5)
    yield pb.RecordRequest(header=pb.RecordHeader(model="small", layers=[LAYER], top_k=2))
    for i in range(clips):
        yield pb.RecordRequest(clip=pb.ClipStart(id=f"c{i}"))
        for name, array in (("rgb", rgb), ("flow", flow)):
            for chunk in tensors.to_chunks(name, array[i], 1 << 16):
                yield pb.RecordRequest(data=chunk)
        if i == 0 and gate is not None:
            assert gate.wait(120), "the test never opened the gate"


def _until(condition, what: str, tries: int = 2000) -> None:
    """Waits (bounded) for a queue state the test arranged; no timing is asserted."""
    probe = threading.Event()
    for _ in range(tries):
        if condition():
            return
        probe.wait(0.01)
    raise AssertionError(f"never reached: {what}")


@pytest.fixture
def one_slot(tmp_path):
    running = start(tmp_path / "store", jobs=JobQueue(slots=1, queue_size=1, poll_s=0.01))
    running.model = import_trained(running)
    yield running
    running.stop()


def test_a_record_and_a_maximize_on_a_one_slot_device_run_one_after_the_other(one_slot) -> None:
    gate = threading.Event()
    record = one_slot.rec.Record.future(_record(4, gate), timeout=120)
    _until(lambda: one_slot.jobs.counts() == (1, 0), "the Record holds the device slot")
    results: list = []
    maximize = threading.Thread(target=lambda: results.append(collect(one_slot.vis.Maximize(_maximize(SHORT), timeout=120))))
    maximize.start()
    _until(lambda: one_slot.jobs.counts() == (1, 1), "the Maximize waits behind the Record")
    assert one_slot.jobs.waiting()[0].startswith("maximize on small")
    gate.set()
    info = record.result(timeout=120)
    maximize.join(120)
    assert info.clips == 4 and len(results) == 1 and len(results[0].results) == 1
    assert one_slot.jobs.wait_idle(30)
    recorded, maximized = list(one_slot.jobs.history)
    assert recorded.description.startswith("record") and recorded.state == "done"
    assert maximized.state == "done" and maximized.steps_run == 3
    assert maximized.started >= recorded.finished  # the forward passes held the slot; the Maximize waited for it


def test_cancelling_a_queued_record_frees_its_place_and_a_full_queue_refuses(one_slot) -> None:
    running = one_slot.vis.Maximize(_maximize(LONG), timeout=300)
    assert next(running).WhichOneof("event") == "progress"  # holds the one slot
    record = one_slot.rec.Record.future(_record(2), timeout=120)
    _until(lambda: one_slot.jobs.counts() == (1, 1), "the Record waits in the queue")
    assert one_slot.jobs.waiting()[0].startswith("record")
    for call in (lambda: list(one_slot.vis.Maximize(_maximize(SHORT, 1), timeout=30)),
                 lambda: one_slot.rec.Record(_record(1), timeout=30)):
        code, details = code_of(call)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details and "queue of 1" in details
    record.cancel()
    _until(lambda: one_slot.jobs.counts() == (1, 0), "the cancelled Record left the queue")
    left = [job for job in one_slot.jobs.history if job.description.startswith("record")]
    assert [(job.state, job.steps_run, job.started) for job in left] == [("cancelled", 0, None)]
    waiting = one_slot.vis.Maximize(_maximize(SHORT, 2), timeout=120)  # its place is free: this one may queue
    _until(lambda: one_slot.jobs.counts() == (1, 1), "the new call takes the freed place")
    running.cancel()
    assert len(collect(waiting).results) == 1
    assert one_slot.jobs.wait_idle(30)


def test_imports_wait_in_their_own_queue_and_a_full_one_refuses(tmp_path) -> None:
    limits = ServiceLimits(max_concurrent_imports=1, import_queue_size=1)
    running = start(tmp_path / "store", limits=limits, jobs=JobQueue(1, 0))
    gate = threading.Event()
    data = TRAINED.read_bytes()

    def held(name: str):
        requests = upload(data, name=name, inputs=declarations())
        yield next(requests)  # the header: the import takes its slot before its bytes are received
        assert gate.wait(120), "the test never opened the gate"
        yield from requests

    try:
        first = running.models.ImportModel.future(held("first"), timeout=120)
        second = running.models.ImportModel.future(upload(data, name="second", inputs=declarations()), timeout=120)
        queue = running.server._built.imports
        _until(lambda: queue.counts() == (1, 1), "one import runs, one waits")
        assert running.jobs.counts() == (0, 0)  # the device's queue is not involved
        code, details = code_of(running.models.ImportModel, upload(data, name="third", inputs=declarations()),
                                timeout=30)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "import(s)" in details
        gate.set()
        assert {first.result(120).name, second.result(120).name} == {"first", "second"}
        assert [job.state for job in queue.history] == ["done", "done"]
    finally:
        running.stop()


def test_the_limits_build_both_queues() -> None:
    admission = ServiceLimits(jobs_per_device=2, job_queue_size=3, max_concurrent_imports=4, import_queue_size=0).admission()
    assert (admission.device.slots, admission.device.queue_size) == (2, 3)
    assert (admission.imports.slots, admission.imports.queue_size) == (4, 0)
    given = JobQueue(1, 1)
    assert ServiceLimits().admission(given).device is given
    with pytest.raises(ValueError, match="import_queue_size"):
        ServiceLimits(import_queue_size=-1)


def test_an_analysis_waits_for_the_device_slot_behind_a_maximize(one_slot) -> None:
    from .test_recording_service import requests  # noqa: PLC0415

    rgb, flow, labels = SyntheticActions().batch(12, seed=3)
    info = one_slot.rec.Record(requests("small", ["logits"], {"rgb": rgb, "flow": flow}, labels), timeout=120)
    running = one_slot.vis.Maximize(_maximize(LONG), timeout=300)
    assert next(running).WhichOneof("event") == "progress"  # holds the one slot
    asked = pb.AnalyzeRequest(model="small", recording=info.id, layers=["logits"],
                              options=pb.AnalyzeOptions(skip_speed=True))
    analysis = one_slot.analysis.Analyze.future(asked, timeout=300)
    _until(lambda: one_slot.jobs.counts() == (1, 1), "the Analyze waits behind the Maximize")
    assert one_slot.jobs.waiting()[0].startswith("analyze small")
    running.cancel()
    reply = analysis.result(timeout=300)
    assert [layer.layer for layer in reply.layers] == ["logits"] and reply.clips == 12
    assert one_slot.jobs.wait_idle(30)
    states = [(job.description.split()[0], job.state) for job in one_slot.jobs.history]
    assert states[-2:] == [("maximize", "cancelled"), ("analyze", "done")]


def test_every_model_call_on_a_one_slot_device_runs_on_its_one_slot_thread(one_slot) -> None:
    """Maximize, a stored job's task, Record and Analyze all run torch on the queue's slot thread: a second thread that
    ran torch would keep a second OpenMP team, which on a machine with few cores slows every later small op."""
    import torch  # noqa: PLC0415

    from .test_recording_service import requests  # noqa: PLC0415

    seen: set[tuple[int, str]] = set()
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.add((threading.get_ident(), threading.current_thread().name)))
    try:
        assert len(collect(one_slot.vis.Maximize(_maximize(SHORT), timeout=120)).results) == 1
        job = one_slot.job_service.Submit(pb.SubmitJobRequest(maximize=_maximize(SHORT, 1)), timeout=30).id
        events = list(one_slot.job_service.Watch(pb.WatchJobRequest(job=job), timeout=120))
        assert events[-1].state == pb.SUCCEEDED
        rgb, flow, labels = SyntheticActions().batch(12, seed=3)
        info = one_slot.rec.Record(requests("small", ["logits"], {"rgb": rgb, "flow": flow}, labels), timeout=120)
        reply = one_slot.analysis.Analyze(pb.AnalyzeRequest(model="small", recording=info.id, layers=["logits"],
                                                            options=pb.AnalyzeOptions(skip_speed=True)), timeout=300)
        assert reply.clips == 12
    finally:
        hook.remove()
    assert len(seen) == 1, f"torch ran on {sorted(name for _, name in seen)}"
    assert next(iter(seen))[1].startswith("kinetoscope-job-slot")
