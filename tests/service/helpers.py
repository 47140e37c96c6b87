"""Drive a real kinetoscope server through the generated stubs: start it, upload models, collect Maximize streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kinetoscope.server.main import create_server
from kinetoscope.server.service import JobQueue, ServiceLimits
from kinetoscope.server.service.wire import ChunkAssembler
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "model_zoo" / "trained" / "two_stream_small.onnx"
TRAINED_INPUTS = (("rgb", (1, 3, 32, 32), "image"), ("flow", (1, 20, 32, 32), "stacked_flow"))
CHUNK = 1 << 20


@dataclass
class Running:
    """A server on port 0 over a store folder, a channel to it and one stub per service."""

    server: grpc.Server
    port: int
    store: Path
    jobs: JobQueue
    channel: grpc.Channel
    models: pb_grpc.ModelServiceStub = field(init=False)
    vis: pb_grpc.VisualizationServiceStub = field(init=False)
    rec: pb_grpc.RecordingServiceStub = field(init=False)
    analysis: pb_grpc.AnalysisServiceStub = field(init=False)
    job_service: pb_grpc.JobServiceStub = field(init=False)
    health: health_pb2_grpc.HealthStub = field(init=False)

    def __post_init__(self) -> None:
        self.models = pb_grpc.ModelServiceStub(self.channel)
        self.vis = pb_grpc.VisualizationServiceStub(self.channel)
        self.rec = pb_grpc.RecordingServiceStub(self.channel)
        self.analysis = pb_grpc.AnalysisServiceStub(self.channel)
        self.job_service = pb_grpc.JobServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def serving(self, service: str = "") -> bool:
        reply = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(None).wait()


def start(store: Path, *, limits: ServiceLimits = ServiceLimits(), jobs: JobQueue | None = None, **kwargs) -> Running:
    jobs = jobs or JobQueue(limits.jobs_per_device, limits.job_queue_size)
    server, port = create_server("127.0.0.1:0", store, limits=limits, jobs=jobs, **kwargs)
    server.start()
    return Running(server, port, Path(store), jobs, grpc.insecure_channel(f"127.0.0.1:{port}"))


def declarations(items=TRAINED_INPUTS) -> list[pb.InputDeclaration]:
    return [pb.InputDeclaration(name=name, shape=list(shape), kind=kind) for name, shape, kind in items]


def upload(data: bytes, *, name: str = "", inputs=(), external: dict[str, bytes] | None = None,
           model_bytes: int | None = None) -> Iterator[pb.ImportModelRequest]:
    external = external or {}
    yield pb.ImportModelRequest(header=pb.ImportHeader(
        name=name, inputs=list(inputs), model_bytes=len(data) if model_bytes is None else model_bytes,
        external_files={k: len(v) for k, v in external.items()},
    ))
    for file, blob in (("", data), *external.items()):
        view = memoryview(blob)
        for offset in range(0, len(blob), CHUNK):
            yield pb.ImportModelRequest(chunk=pb.FileChunk(file=file, data=bytes(view[offset : offset + CHUNK])))


def import_trained(running: Running, name: str = "small") -> pb.ModelInfo:
    return running.models.ImportModel(upload(TRAINED.read_bytes(), name=name, inputs=declarations()), timeout=120)



def import_other(running: Running, name: str = "other") -> pb.ModelInfo:
    """The trained model under another id: the same graph with another doc string, so other bytes."""
    import onnx  # noqa: PLC0415

    model = onnx.load(TRAINED)
    model.doc_string = "a second copy"
    return running.models.ImportModel(upload(model.SerializeToString(), name=name, inputs=declarations()), timeout=120)

def channel_objectives(layer: str, channels) -> list[pb.Objective]:
    return [pb.Objective(terms=[pb.Target(kind=pb.Target.CHANNEL, layer=layer, channel=c)]) for c in channels]


@dataclass
class Collected:
    progress: list[pb.Progress]
    results: dict[tuple[int, int], pb.UnitResult]
    inputs: dict[tuple[int, int], dict[str, np.ndarray]]
    summary: pb.MaximizeSummary | None
    largest_message: int


def collect(events) -> Collected:
    """Reassembles a Maximize stream: UnitResults and, after each, its inputs from ResultChunks."""
    out = Collected([], {}, {}, None, 0)
    current: ChunkAssembler | None = None
    for event in events:
        out.largest_message = max(out.largest_message, event.ByteSize())
        kind = event.WhichOneof("event")
        if kind == "progress":
            out.progress.append(event.progress)
        elif kind == "result":
            key = (event.result.unit_index, event.result.setting_index)
            out.results[key], out.inputs[key] = event.result, {}
        elif kind == "data":
            key = (event.data.unit_index, event.data.setting_index)
            assert key in out.results, "a ResultChunk arrived before its UnitResult"
            if current is None:
                current = ChunkAssembler(event.data.chunk)
            if current.add(event.data.chunk):
                out.inputs[key][current.name] = current.array()
                current = None
        else:
            out.summary = event.summary
    assert current is None, "a tensor's chunks stopped before it was complete"
    return out


def code_of(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    """Calls and returns the error status (fails the test if the call succeeds)."""
    try:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)) and not hasattr(result, "ByteSize"):
            for _ in result:
                pass
    except grpc.RpcError as error:
        return error.code(), error.details()
    raise AssertionError(f"{call} succeeded; expected an error status")
