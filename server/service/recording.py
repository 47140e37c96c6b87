"""RecordingService: stream clips through a model into per-channel statistics, store them, hand them back."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import grpc
import numpy as np

from kinetoscope.server.engine import Cancelled
from kinetoscope.server.engine.config import RecordConfig
from kinetoscope.server.engine.statistics import LayerStatistics
from kinetoscope.server.library import ModelLibrary
from kinetoscope.server.recordings import KeptClips, RecordingNotFound, RecordingStore, StoredRecording
from kinetoscope.server.store import StoredModel
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from . import wire
from .errors import BadRequest, LimitExceeded, NotFound, guarded
from .jobs import JobQueue
from .limits import ServiceLimits
from .models import load_imported
from .plan import LayerCatalog
from .visualization import StopSignal

if TYPE_CHECKING:
    from kinetoscope.server.engine.recorder import Recorder

_LOGGER = logging.getLogger(__name__)

DEFAULT_TOP_K = 5
DEFAULT_BINS = 64
MAX_ID_CHARS = 256


class RecordingServicer(pb_grpc.RecordingServiceServicer):
    def __init__(self, library: ModelLibrary, recordings: RecordingStore, limits: ServiceLimits, device: str = "cpu",
                 jobs: JobQueue | None = None) -> None:
        self.library, self.recordings, self.limits, self.device = library, recordings, limits, device
        self.jobs = jobs or limits.admission().device
        """The device's queue, shared with Maximize: a Record's forward passes run in a device slot."""

    @guarded
    def Record(self, request_iterator: Iterator[pb.RecordRequest], context: grpc.ServicerContext) -> pb.RecordingInfo:
        header = _first_header(request_iterator)
        stored = self.library.store.get(_required(header.model, "name the model: its id or name (ListModels lists them)"))
        plan = plan_recording(header, stored, self.limits)
        from kinetoscope.server.engine.recorder import Recorder  # noqa: PLC0415 - torch and onnxruntime, only to record

        def record() -> tuple[Recorder, ClipReader, dict[str, LayerStatistics]]:
            recorder = Recorder(load_imported(self.library, stored.id), plan.layers, plan.config, device=self.device)
            reader = ClipReader(recorder, plan, self.limits)
            for request in request_iterator:
                reader.add(request)
            return recorder, reader, reader.finish()

        recorder, reader, statistics = self.jobs.run(
            f"record {stored.name or stored.id}: {len(plan.layers)} layer(s)", StopSignal(context).is_set, record)
        if not context.is_active():
            raise Cancelled("the call ended before the recording was stored")
        check_size(statistics, self.limits)
        kept = reader.keeper.result()
        meta = {"model": stored.id, "model_name": stored.name, "name": header.name, "top_k": plan.config.top_k,
                "histogram_bins": plan.config.histogram_bins, "backend": recorder.backend, "created_at": time.time(),
                "statistic": "per-clip maximum over positions", "kept_clip_bytes": reader.keeper.bytes,
                "max_kept_clip_bytes": self.limits.max_kept_clip_bytes}
        return recording_info(self.recordings.put(meta, statistics, kept))

    @guarded
    def GetRecording(self, request: pb.GetRecordingRequest, context) -> pb.Recording:
        found = self._get(_required(request.recording, "name the recording: its id or name (ListRecordings lists them)"))
        return recording_proto(found, found.statistics())

    @guarded
    def ListRecordings(self, request: pb.ListRecordingsRequest, context) -> pb.ListRecordingsResponse:
        model = self.library.store.get(request.model).id if request.model else None
        return pb.ListRecordingsResponse(recordings=[recording_info(r) for r in self.recordings.list(model)])

    def _get(self, id_or_name: str) -> StoredRecording:
        try:
            return self.recordings.get(id_or_name)
        except RecordingNotFound as exc:
            raise NotFound(str(exc)) from None


@dataclass(frozen=True)
class RecordPlan:
    layers: list[str]
    """Tensor names, in the order asked, without repeats."""
    config: RecordConfig
    inputs: dict[str, tuple[int, ...]]
    """Graph input → clip shape (without the batch axis)."""
    classes: int
    """len(class_names), 0 when the model has none."""


def plan_recording(header: pb.RecordHeader, stored: StoredModel, limits: ServiceLimits) -> RecordPlan:
    """Checks a RecordHeader against the stored model and the limits, before any clip is read."""
    if not header.layers:
        raise BadRequest("name at least one layer to record (GetModel lists them)")
    if len(header.layers) > limits.max_record_layers:
        raise LimitExceeded(f"{len(header.layers)} layers asked; this server records at most {limits.max_record_layers} per call")
    catalog = LayerCatalog(stored)
    entries = {}
    for i, name in enumerate(header.layers):
        entry = catalog.find(name, f"layers[{i}]")
        entries[entry["name"]] = entry
    top_k = _bounded("top_k", header.top_k or DEFAULT_TOP_K, limits.max_top_k)
    bins = _bounded("histogram_bins", header.histogram_bins or DEFAULT_BINS, limits.max_histogram_bins)
    if bins < 2 or bins % 2:
        raise BadRequest(f"histogram_bins must be an even number >= 2 (bins merge in pairs as the range grows), got {bins}")
    classes = len(wire.class_names({str(k): str(v) for k, v in (stored.meta.get("metadata") or {}).items()}))
    plan = RecordPlan(
        layers=list(entries), config=RecordConfig(top_k=top_k, histogram_bins=bins, classes=classes),
        inputs={item["name"]: tuple(item["shape"][1:]) for item in stored.meta.get("inputs", [])}, classes=classes,
    )
    estimate = sum(statistics_bytes(int(e.get("channels", 0)), top_k, bins, classes) for e in entries.values())
    if estimate > limits.max_recording_bytes:
        raise LimitExceeded(f"the statistics of these layers would take about {estimate:,} bytes; this server keeps at most "
                            f"{limits.max_recording_bytes:,} per recording (record fewer layers at once, or fewer bins)")
    return plan


def _bounded(name: str, value: int, most: int) -> int:
    if value < 0:
        raise BadRequest(f"{name} must be >= 0 (0 takes the default), got {value}")
    if value > most:
        raise LimitExceeded(f"{name} {value} is more than this server allows ({most})")
    return value


def statistics_bytes(channels: int, top_k: int, bins: int, classes: int) -> int:
    """About what one layer's statistics take in a Recording message (ids of about 16 characters)."""
    return channels * (10 + top_k * 40 + bins * 8 + classes * 13) + bins * 5 + classes * 10 + 64


def check_size(statistics: dict[str, LayerStatistics], limits: ServiceLimits) -> None:
    """Refuses statistics whose GetRecording reply would pass the limit (labels can widen the per-class table)."""
    size = sum(layer_proto(stats).ByteSize() + 8 for stats in statistics.values())
    if size > limits.max_recording_bytes:
        classes = max(stats.per_class_max.shape[1] for stats in statistics.values())
        raise LimitExceeded(f"the statistics take {size:,} bytes ({classes} classes in the per-class table); this server "
                            f"keeps at most {limits.max_recording_bytes:,} per recording (record fewer layers at once)")


class ClipReader:
    """Reassembles a Record stream's clips (a ClipStart, then each input's chunks) and feeds them to the recorder.

    Only the clip being received is held; limits are checked as soon as a message shows them broken.
    """

    def __init__(self, recorder: Recorder, plan: RecordPlan, limits: ServiceLimits) -> None:
        self.recorder, self.plan, self.limits = recorder, plan, limits
        self.clips = 0
        self.start: pb.ClipStart | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self.current: wire.ChunkAssembler | None = None
        self.bytes = 0
        self.keeper = ClipKeeper(limits.max_kept_clip_bytes, plan.inputs)

    def add(self, request: pb.RecordRequest) -> None:
        part = request.WhichOneof("part")
        if part == "clip":
            self._close()
            self._open(request.clip)
        elif part == "data":
            self._data(request.data)
        elif part == "header":
            raise BadRequest("only the first message of a Record stream may be a RecordHeader")
        else:
            raise BadRequest("an empty RecordRequest: send a ClipStart, then the clip's TensorChunks")

    def finish(self) -> dict[str, LayerStatistics]:
        self._close()
        if self.clips == 0:
            raise BadRequest("no clips arrived: after the RecordHeader send, per clip, a ClipStart and its TensorChunks")
        return self.recorder.finish()

    def _open(self, start: pb.ClipStart) -> None:
        if self.clips >= self.limits.max_record_clips:
            raise LimitExceeded(f"more than {self.limits.max_record_clips:,} clips in one Record call; split them over "
                                "several recordings")
        where = f"clip {self.clips}" + (f" ({start.id!r})" if start.id else "")
        if len(start.id) > MAX_ID_CHARS:
            raise BadRequest(f"clip {self.clips}: its id has {len(start.id)} characters; at most {MAX_ID_CHARS}")
        if start.has_label:
            classes = self.plan.classes
            if start.label < 0:
                raise BadRequest(f"{where}: label {start.label} is negative; labels are class indices (leave has_label unset for none)")
            if classes and start.label >= classes:
                raise BadRequest(f"{where}: label {start.label} is out of range; the model has {classes} classes (0..{classes - 1})")
            if start.label >= self.limits.max_classes:
                raise BadRequest(f"{where}: label {start.label} is out of range; this server takes labels below "
                                 f"{self.limits.max_classes:,}")
        self.start, self.arrays, self.bytes = start, {}, 0

    def _data(self, chunk: pb.TensorChunk) -> None:
        if self.start is None:
            raise BadRequest("a TensorChunk arrived before any ClipStart; each clip starts with a ClipStart")
        if self.current is None:
            self.current = self._assembler(chunk)
        try:
            done = self.current.add(chunk)
        except wire.WireError as exc:
            raise BadRequest(f"clip {self.clips}: {exc}") from None
        if done:
            self.arrays[self.current.name] = self.current.array()
            self.current = None

    def _assembler(self, chunk: pb.TensorChunk) -> wire.ChunkAssembler:
        where = f"clip {self.clips}"
        shape = self.plan.inputs.get(chunk.name)
        if shape is None:
            raise BadRequest(f"{where}: the model has no input {chunk.name!r}; its inputs are {', '.join(self.plan.inputs)}")
        if chunk.name in self.arrays:
            raise BadRequest(f"{where}: input {chunk.name!r} arrived twice")
        self.bytes += max(chunk.total_bytes, 0)
        if self.bytes > self.limits.max_clip_bytes:
            raise LimitExceeded(f"{where} holds more than {self.limits.max_clip_bytes:,} bytes; this server takes at most "
                                "that per clip (send shorter or smaller clips)")
        if tuple(chunk.shape) not in (shape, (1, *shape)):
            raise BadRequest(f"{where}: input {chunk.name!r} has shape {list(chunk.shape)}; the model takes "
                             f"{list(shape)} per clip")
        if chunk.offset != 0:
            raise BadRequest(f"{where}: input {chunk.name!r} starts at byte {chunk.offset}; chunks come in order from 0")
        try:
            return wire.ChunkAssembler(chunk)
        except wire.WireError as exc:
            raise BadRequest(f"{where}: {exc}") from None

    def _close(self) -> None:
        if self.start is None:
            return
        where = f"clip {self.clips}"
        if self.current is not None:
            raise BadRequest(f"{where}: input {self.current.name!r} stopped after {len(self.current.buffer):,} of "
                             f"{self.current.total:,} bytes")
        missing = [name for name in self.plan.inputs if name not in self.arrays]
        if missing:
            raise BadRequest(f"{where} lacks input(s) {', '.join(map(repr, missing))}; every clip carries one tensor per input")
        if not all(np.isfinite(a).all() for a in self.arrays.values() if a.dtype.kind == "f"):
            raise BadRequest(f"{where} holds NaN or infinite values")
        label = self.start.label if self.start.has_label else None
        try:
            self.recorder.add_clip(self.arrays, label, self.start.id or None)
        except ValueError as exc:
            raise BadRequest(f"{where}: {exc}") from None
        self.keeper.add(self.arrays, label, self.start.id)
        self.clips += 1
        self.start, self.arrays = None, {}


class ClipKeeper:
    """Holds a Record stream's clips for storing with the recording, until they pass `limit` bytes.

    Past the limit every clip held is dropped at once (a recording keeps all its clips or
    none), and the recording is stored with its statistics only.
    """

    def __init__(self, limit: int, shapes: dict[str, tuple[int, ...]]) -> None:
        self.limit, self.shapes = limit, shapes
        self.inputs: dict[str, list[np.ndarray]] = {}
        self.labels: list[int] = []
        self.ids: list[str] = []
        self.bytes = 0
        self.dropped = False

    def add(self, arrays: dict[str, np.ndarray], label: int | None, clip_id: str) -> None:
        self.bytes += sum(int(a.nbytes) for a in arrays.values())
        if self.dropped:
            return
        if self.bytes > self.limit:
            _LOGGER.info("recording passed %d bytes of clips: storing its statistics without the clips", self.limit)
            self.inputs, self.labels, self.ids, self.dropped = {}, [], [], True
            return
        for name, array in arrays.items():
            self.inputs.setdefault(name, []).append(array.reshape(self.shapes[name]))
        self.labels.append(-1 if label is None else int(label))
        self.ids.append(clip_id)

    def result(self) -> KeptClips | None:
        if self.dropped or not self.labels:
            return None
        return KeptClips.stack(self.inputs, self.labels, self.ids)


# ---------------------------------------------------------------- replies


def recording_info(stored: StoredRecording) -> pb.RecordingInfo:
    meta = stored.meta
    return pb.RecordingInfo(id=stored.id, name=meta.get("name", ""), model=meta["model"], clips=int(meta["clips"]),
                            layers=list(meta["layers"]), created_at=float(meta.get("created_at", 0.0)),
                            clips_kept=stored.clips_kept)


def recording_proto(stored: StoredRecording, statistics: dict[str, LayerStatistics]) -> pb.Recording:
    return pb.Recording(info=recording_info(stored), layers=[layer_proto(s) for s in statistics.values()])


def layer_proto(stats: LayerStatistics) -> pb.LayerStatistics:
    tops = [
        pb.ChannelTop(clips=[pb.TopClip(clip_id=str(i), clip_index=int(n), value=float(v)) for i, n, v in zip(ids, index, values)])
        for ids, index, values in zip(stats.top_ids.tolist(), stats.top_index.tolist(), stats.top_values.tolist())
    ]
    return pb.LayerStatistics(
        layer=stats.layer, max=stats.max.tolist(), mean=stats.mean.tolist(), top=tops,
        histogram=wire.to_tensor(stats.histogram.astype(np.int64)), histogram_edges=stats.histogram_edges.tolist(),
        per_class_max=wire.to_tensor(stats.per_class_max.astype(np.float32)),
        per_class_sum=wire.to_tensor(stats.per_class_sum.astype(np.float64)) if stats.per_class_count.size else None,
        per_class_count=stats.per_class_count.tolist(),
    )


def _first_header(requests: Iterator[pb.RecordRequest]) -> pb.RecordHeader:
    first = next(requests, None)
    if first is None or first.WhichOneof("part") != "header":
        raise BadRequest("a Record stream starts with a RecordHeader (model, layers, top_k), then the clips")
    return first.header


def _required(text: str, message: str) -> str:
    if not text:
        raise BadRequest(message)
    return text
