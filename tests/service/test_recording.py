"""RecordingService refuses malformed calls with the status that says what to fix, and the server carries on."""

from __future__ import annotations

import grpc

from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import code_of


def test_malformed_recording_calls_get_clear_statuses(shared) -> None:
    clip_first = iter([pb.RecordRequest(clip=pb.ClipStart(id="a"))])
    calls = [
        (shared.rec.Record, clip_first, grpc.StatusCode.INVALID_ARGUMENT, "starts with a RecordHeader"),
        (shared.rec.Record, iter([pb.RecordRequest(header=pb.RecordHeader(model="small"))]),
         grpc.StatusCode.INVALID_ARGUMENT, "name at least one layer"),
        (shared.rec.Record, iter([pb.RecordRequest(header=pb.RecordHeader(model="small", layers=["conv_fusion"])),
                                  pb.RecordRequest(data=pb.TensorChunk(name="rgb"))]),
         grpc.StatusCode.INVALID_ARGUMENT, "before any ClipStart"),
        (shared.rec.GetRecording, pb.GetRecordingRequest(recording="r"), grpc.StatusCode.NOT_FOUND, "no recording 'r'"),
        (shared.rec.GetRecording, pb.GetRecordingRequest(), grpc.StatusCode.INVALID_ARGUMENT, "name the recording"),
        (shared.rec.ListRecordings, pb.ListRecordingsRequest(model="ghost"), grpc.StatusCode.NOT_FOUND, "no model 'ghost'"),
    ]
    for call, request, code, words in calls:
        got, details = code_of(call, request, timeout=30)
        assert got == code and words in details, details
    assert shared.serving()
