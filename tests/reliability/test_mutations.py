"""Property-based: hundreds of damaged and lying ONNX files, each refused with an importer error (never a crash).

The bulk runs against the importer in this process (fast); a fixed sample goes through a
real server, where each must get a caller-error status and the server must keep serving.
"""

from __future__ import annotations

import collections

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinetoscope.v1 import kinetoscope_pb2 as pb
from tests.service.helpers import upload

from .mutations import damaged_bytes, lying_protos, outcome

SETTINGS = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
SEEN: collections.Counter = collections.Counter()
CALLER_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION}


@SETTINGS
@given(damaged_bytes())
def test_damaged_bytes_are_refused_or_imported(data: bytes) -> None:
    SEEN[outcome(data)] += 1


@SETTINGS
@given(lying_protos())
def test_lying_protos_are_refused_or_imported(data: bytes) -> None:
    SEEN[outcome(data)] += 1


@settings(max_examples=24, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(damaged_bytes(), lying_protos()))
def test_a_sample_through_the_server_gets_caller_statuses(server, data: bytes) -> None:
    try:
        server.models.ImportModel(upload(data, name="mutant"), timeout=120)
    except grpc.RpcError as error:
        assert error.code() in CALLER_ERRORS, (error.code(), error.details())
    assert server.serving()
