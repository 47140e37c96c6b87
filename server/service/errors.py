"""Exceptions → gRPC status codes, in one place, with messages that say what to fix.

| exception                                     | status              |
|-----------------------------------------------|---------------------|
| BadRequest (malformed request, unknown layer…) | INVALID_ARGUMENT    |
| importer InvalidModel, UnsafeExternalData     | INVALID_ARGUMENT    |
| importer UnsupportedModel                     | INVALID_ARGUMENT    |
| importer ModelTooLarge                        | RESOURCE_EXHAUSTED  |
| sandbox ImportLimitExceeded (memory, time)    | RESOURCE_EXHAUSTED  |
| sandbox ImportCrashed (child died, no answer) | INVALID_ARGUMENT    |
| sandbox ImportCancelled (caller went away)    | CANCELLED           |
| importer ParityError                          | FAILED_PRECONDITION |
| LimitExceeded, jobs QueueFull, MemoryError    | RESOURCE_EXHAUSTED  |
| NotFound, store ModelNotFound                 | NOT_FOUND           |
| NotAvailable                                  | UNIMPLEMENTED       |
| PreconditionFailed (stored model unusable)    | FAILED_PRECONDITION |
| StoreUnavailable (a job record not written)   | UNAVAILABLE         |
| engine Cancelled (client cancel / deadline)   | CANCELLED / DEADLINE_EXCEEDED |
| anything else (a server bug)                  | INTERNAL, logged with its traceback |

UnsupportedModel is INVALID_ARGUMENT, not FAILED_PRECONDITION: the model itself (the
argument) uses an op this server cannot convert, and no change of server state the
caller could make would let the same request succeed; retrying is pointless until the
model is re-exported (or the converter learns the op).
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Callable

import grpc

from kinetoscope.server.engine import Cancelled
from kinetoscope.server.importer import (
    ImportFailed,
    InvalidModel,
    ModelTooLarge,
    ParityError,
    UnsupportedModel,
)
from kinetoscope.server.sandbox import ImportCancelled
from kinetoscope.server.store import ModelNotFound

from .jobs import QueueFull, WaitCancelled

_LOGGER = logging.getLogger(__name__)

Code = grpc.StatusCode


class ServiceError(Exception):
    """An error the caller can act on; `code` is its status."""

    code: grpc.StatusCode = Code.UNKNOWN

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class BadRequest(ServiceError):
    code = Code.INVALID_ARGUMENT


class LimitExceeded(ServiceError):
    code = Code.RESOURCE_EXHAUSTED


class NotFound(ServiceError):
    code = Code.NOT_FOUND


class NotAvailable(ServiceError):
    code = Code.UNIMPLEMENTED


class PreconditionFailed(ServiceError):
    code = Code.FAILED_PRECONDITION


class StoreUnavailable(ServiceError):
    """The store could not be written for a reason other than a full disk (which is LimitExceeded)."""

    code = Code.UNAVAILABLE


def status_for(exc: BaseException, context: grpc.ServicerContext | None = None) -> tuple[grpc.StatusCode, str]:
    """The status code and message a caller gets for `exc`."""
    if isinstance(exc, ServiceError):
        return exc.code, str(exc)
    if isinstance(exc, ModelNotFound):
        return Code.NOT_FOUND, f"{exc} (import it first, or check ListModels)"
    if isinstance(exc, ImportCancelled):
        return Code.CANCELLED, f"cancelled ({exc})"
    if isinstance(exc, ModelTooLarge):
        return Code.RESOURCE_EXHAUSTED, f"model refused: {exc}"
    if isinstance(exc, UnsupportedModel):
        return Code.INVALID_ARGUMENT, f"unsupported model: {exc} (re-export it with ops the converter covers)"
    if isinstance(exc, ParityError):
        return Code.FAILED_PRECONDITION, (
            f"the converted model does not compute what onnxruntime computes: {exc} "
            "(the model was not stored; report the op named above)"
        )
    if isinstance(exc, InvalidModel):
        return Code.INVALID_ARGUMENT, f"invalid model: {exc}"
    if isinstance(exc, ImportFailed):
        return Code.INVALID_ARGUMENT, f"import failed: {exc}"
    if isinstance(exc, QueueFull):
        return Code.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, (Cancelled, WaitCancelled)):
        if context is not None and _deadline_passed(context):
            return Code.DEADLINE_EXCEEDED, f"the deadline passed before the job finished ({exc}); allow more time or ask for fewer iterations"
        return Code.CANCELLED, f"cancelled ({exc})"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return Code.RESOURCE_EXHAUSTED, f"out of memory ({exc}); ask for fewer units or settings at once, or set options.max_batch lower"
    return Code.INTERNAL, f"internal server error ({type(exc).__name__}); the server log has the details"


def _deadline_passed(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


MAX_MESSAGE = 2000
"""Status details travel in trailing metadata, which gRPC caps (8 KiB by default)."""


def abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    """Ends the call with `exc`'s status (raises, as context.abort does)."""
    code, message = status_for(exc, context)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 5] + " ..."
    if code is Code.INTERNAL and not isinstance(exc, grpc.RpcError):
        _LOGGER.error("internal error answering a call", exc_info=exc)
    elif not context.is_active():
        _LOGGER.info("call already ended when it failed with %s: %s", type(exc).__name__, exc)
    else:
        _LOGGER.info("%s: %s", code.name, message)
    context.abort(code, message)


def guarded(method: Callable) -> Callable:
    """Wraps a servicer method (unary or streaming) so exceptions become statuses via `status_for`."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def stream(self, request, context):
            try:
                yield from method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - every error becomes a status
                abort(context, exc)
        return stream

    @functools.wraps(method)
    def unary(self, request, context):
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every error becomes a status
            abort(context, exc)
    return unary
