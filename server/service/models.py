"""ModelService: import (a header, then chunks of bytes), list, describe and delete stored models."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from kinetoscope.server.importer import ImportFailed, InputSpec, InvalidModel
from kinetoscope.server.library import ModelLibrary
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from . import wire
from .errors import BadRequest, LimitExceeded, PreconditionFailed, guarded
from .jobs import JobQueue
from .limits import ServiceLimits

if TYPE_CHECKING:
    from kinetoscope.server.importer import ImportedModel
    from kinetoscope.server.store import StoredModel

_LOGGER = logging.getLogger(__name__)


class ModelServicer(pb_grpc.ModelServiceServicer):
    def __init__(self, library: ModelLibrary, limits: ServiceLimits, imports: JobQueue | None = None) -> None:
        self.library, self.limits = library, limits
        self.imports = imports or limits.admission().imports
        """Import slots and their wait queue: an import waits there before its upload is received."""

    @guarded
    def ImportModel(self, request_iterator: Iterator[pb.ImportModelRequest], context) -> pb.ModelInfo:
        header = _first_header(request_iterator)
        upload = Upload.start(header, self.limits.max_upload_bytes)

        def receive_and_import() -> StoredModel:
            for request in request_iterator:
                upload.add(request)
            upload.finish()
            _LOGGER.info("importing %r: %s bytes, %d external files", header.name, f"{upload.received:,}", len(upload.external))
            model, external = upload.take()
            return self.library.import_bytes(model, name=header.name or None, inputs=upload.inputs, external_data=external,
                                             should_stop=lambda: not context.is_active())

        stored = self.imports.run(f"import {header.name or '(unnamed)'}", lambda: not context.is_active(),
                                  receive_and_import)
        return wire.model_info(stored)

    @guarded
    def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[wire.model_info(stored) for stored in self.library.store.list()])

    @guarded
    def GetModel(self, request: pb.GetModelRequest, context) -> pb.ModelDetail:
        stored = self.library.store.get(_model_ref(request.model))
        return pb.ModelDetail(info=wire.model_info(stored), layers=[wire.layer(e) for e in stored.meta.get("catalog", [])])

    @guarded
    def DeleteModel(self, request: pb.DeleteModelRequest, context) -> pb.DeleteModelResponse:
        stored = self.library.delete(_model_ref(request.model))
        _LOGGER.info("deleted model %s (%s)", stored.id, stored.name)
        return pb.DeleteModelResponse(id=stored.id)


def load_imported(library: ModelLibrary, model_id: str) -> ImportedModel:
    """A stored model's torch graph for a job; a stored file that no longer imports is FAILED_PRECONDITION."""
    try:
        return library.load(model_id)[1]
    except ImportFailed as exc:
        raise PreconditionFailed(
            f"stored model {model_id} could not be imported again ({exc}); delete it and import it again"
        ) from exc


def _model_ref(text: str) -> str:
    if not text:
        raise BadRequest("name the model: its id or name (ListModels lists them)")
    return text


def _first_header(requests: Iterator[pb.ImportModelRequest]) -> pb.ImportHeader:
    first = next(requests, None)
    if first is None or first.WhichOneof("part") != "header":
        raise BadRequest("an ImportModel stream starts with an ImportHeader (name, inputs, sizes), then the file chunks")
    return first.header


@dataclass
class Upload:
    """The files of one import as they arrive; refuses anything over the limit or not declared, as soon as it shows."""

    limit: int
    declared: dict[str, int]
    """File → size the header announced ("" is the model file; 0 there means not announced)."""
    inputs: list[InputSpec]
    model: bytearray = field(default_factory=bytearray)
    external: dict[str, bytearray] = field(default_factory=dict)
    received: int = 0

    @classmethod
    def start(cls, header: pb.ImportHeader, limit: int) -> "Upload":
        if header.model_bytes < 0 or any(size < 0 for size in header.external_files.values()):
            raise BadRequest("ImportHeader sizes must not be negative")
        for name in header.external_files:
            from kinetoscope.server.importer.load import check_plain_name  # noqa: PLC0415 - onnx, only for external data

            try:
                check_plain_name(name)
            except InvalidModel as exc:
                raise BadRequest(f"external file {name!r}: {exc.args[0]}") from None
        announced = header.model_bytes + sum(header.external_files.values())
        if announced > limit:
            raise LimitExceeded(
                f"the upload would be {announced:,} bytes (model and external data); this server accepts at most {limit:,}"
            )
        try:
            inputs = wire.input_specs(header.inputs)
        except wire.WireError as exc:
            raise BadRequest(str(exc)) from None
        declared = {"": header.model_bytes, **dict(header.external_files)}
        return cls(limit, declared, inputs, external={name: bytearray() for name in header.external_files})

    def add(self, request: pb.ImportModelRequest) -> None:
        if request.WhichOneof("part") != "chunk":
            raise BadRequest("only the first message of an ImportModel stream may be a header; the rest are chunks")
        chunk = request.chunk
        target = self.model if chunk.file == "" else self.external.get(chunk.file)
        if target is None:
            named = ", ".join(repr(n) for n in self.external) or "none"
            raise BadRequest(f"a chunk for file {chunk.file!r}, which the header does not declare (declared external files: {named})")
        self.received += len(chunk.data)
        if self.received > self.limit:
            raise LimitExceeded(f"the upload passed {self.limit:,} bytes, the most this server accepts")
        size = self.declared[chunk.file]
        if (chunk.file or size) and len(target) + len(chunk.data) > size:
            raise BadRequest(f"{_file(chunk.file)} is larger than the {size:,} bytes its header declared")
        target += chunk.data

    def finish(self) -> None:
        for name, size in self.declared.items():
            got = len(self.model if name == "" else self.external[name])
            if (name or size) and got != size:
                raise BadRequest(f"{_file(name)}: the header declared {size:,} bytes but {got:,} arrived")
        if not self.model:
            raise BadRequest("no model bytes arrived: send the .onnx file in FileChunks with an empty `file`")


    def take(self) -> tuple[bytes, dict[str, bytes]]:
        """The model and external files as bytes, releasing the receive buffers (one copy in memory, not two)."""
        model = bytes(self.model)
        self.model.clear()
        external = {}
        for name, blob in self.external.items():
            external[name] = bytes(blob)
            blob.clear()
        return model, external


def _file(name: str) -> str:
    return "the model file" if name == "" else f"external file {name!r}"
