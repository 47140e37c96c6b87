"""The one exception → status table: caller mistakes never become INTERNAL."""

from __future__ import annotations

import grpc
import pytest

from kinetoscope.server.engine import Cancelled
from kinetoscope.server.importer import InvalidModel, ModelTooLarge, ParityError, UnsafeExternalData, UnsupportedModel
from kinetoscope.server.service.errors import BadRequest, LimitExceeded, NotAvailable, NotFound, PreconditionFailed, status_for
from kinetoscope.server.service.jobs import QueueFull, WaitCancelled
from kinetoscope.server.store import ModelNotFound

Code = grpc.StatusCode


@pytest.mark.parametrize("exc, code", [
    (InvalidModel("x"), Code.INVALID_ARGUMENT),
    (UnsafeExternalData("x"), Code.INVALID_ARGUMENT),
    (UnsupportedModel("op Foo-13 is not supported"), Code.INVALID_ARGUMENT),
    (ModelTooLarge("x"), Code.RESOURCE_EXHAUSTED),
    (ParityError("x"), Code.FAILED_PRECONDITION),
    (ModelNotFound("no model 'a'"), Code.NOT_FOUND),
    (BadRequest("x"), Code.INVALID_ARGUMENT),
    (LimitExceeded("x"), Code.RESOURCE_EXHAUSTED),
    (NotFound("x"), Code.NOT_FOUND),
    (NotAvailable("x"), Code.UNIMPLEMENTED),
    (PreconditionFailed("x"), Code.FAILED_PRECONDITION),
    (QueueFull("busy"), Code.RESOURCE_EXHAUSTED),
    (Cancelled("stopped at step 3"), Code.CANCELLED),
    (WaitCancelled("left the queue"), Code.CANCELLED),
    (MemoryError(), Code.RESOURCE_EXHAUSTED),
    (RuntimeError("a bug"), Code.INTERNAL),
])
def test_status_for(exc, code) -> None:
    got, message = status_for(exc)
    assert got == code and message
    if code is not Code.INTERNAL:
        assert "internal" not in message


def test_a_passed_deadline_is_deadline_exceeded() -> None:
    class Expired:
        def time_remaining(self):
            return -0.1

    assert status_for(Cancelled("stopped at step 3"), Expired())[0] == Code.DEADLINE_EXCEEDED
