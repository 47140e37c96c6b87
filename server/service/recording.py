"""RecordingService: answers UNIMPLEMENTED with a clear message until activation recording lands."""

from __future__ import annotations

import logging

from kinetoscope.v1 import kinetoscope_pb2_grpc as pb_grpc

from .errors import NotAvailable, guarded

_LOGGER = logging.getLogger(__name__)

NOT_YET = ("activation recording is not available on this server yet (it comes in a later version); "
           "Maximize works without it, normalizing units by their receptive field alone")


class RecordingServicer(pb_grpc.RecordingServiceServicer):
    @guarded
    def Record(self, request_iterator, context):
        raise NotAvailable(f"Record: {NOT_YET}")

    @guarded
    def GetRecording(self, request, context):
        raise NotAvailable(f"GetRecording: {NOT_YET}")

    @guarded
    def ListRecordings(self, request, context):
        raise NotAvailable(f"ListRecordings: {NOT_YET}")
