"""Server reflection lists the services (what grpcurl-style tools use); health reports each one SERVING."""

from __future__ import annotations

from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

SERVICES = ["kinetoscope.v1.ModelService", "kinetoscope.v1.VisualizationService", "kinetoscope.v1.RecordingService"]


def test_reflection_lists_and_describes_the_services(shared) -> None:
    database = ProtoReflectionDescriptorDatabase(shared.channel)
    services = set(database.get_services())
    assert services >= {*SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    pool = DescriptorPool(database)
    maximize = pool.FindServiceByName("kinetoscope.v1.VisualizationService").methods_by_name["Maximize"]
    assert maximize.output_type.full_name == "kinetoscope.v1.MaximizeEvent" and maximize.server_streaming
    imp = pool.FindServiceByName("kinetoscope.v1.ModelService").methods_by_name["ImportModel"]
    assert imp.client_streaming and imp.input_type.fields_by_name["chunk"].message_type.name == "FileChunk"


def test_health_reports_every_service_serving(shared) -> None:
    for service in ["", *SERVICES]:
        assert shared.serving(service)
