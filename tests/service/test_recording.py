"""RecordingService answers UNIMPLEMENTED, saying recording comes later, and the server carries on."""

from __future__ import annotations

import grpc

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import code_of


def test_recording_calls_are_unimplemented_with_a_clear_message(shared) -> None:
    calls = [
        (shared.rec.Record, iter([pb.RecordRequest(header=pb.RecordHeader(model="small", layers=["conv_fusion"]))])),
        (shared.rec.GetRecording, pb.GetRecordingRequest(recording="r")),
        (shared.rec.ListRecordings, pb.ListRecordingsRequest(model="small")),
    ]
    for call, request in calls:
        code, details = code_of(call, request, timeout=10)
        assert code == grpc.StatusCode.UNIMPLEMENTED
        assert "recording is not available" in details and "later" in details
    assert shared.serving()
