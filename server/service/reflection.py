"""Server reflection under both names tools use: grpc.reflection.v1 (grpcurl, Postman, current grpc-js) and v1alpha.

grpcio-reflection serves only v1alpha. The v1 protocol is the same messages under
another package, byte for byte on the wire, so v1 is served by the library's own
servicer: its descriptor is made from v1alpha's with the package renamed, and
registered in the default pool so that reflection can describe itself under both names.
"""

from __future__ import annotations

from typing import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2 as alpha, reflection_pb2_grpc as alpha_grpc

ALPHA_SERVICE = reflection.SERVICE_NAME
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICES = (V1_SERVICE, ALPHA_SERVICE)
_ALPHA_PACKAGE, _V1_PACKAGE = "grpc.reflection.v1alpha", "grpc.reflection.v1"


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serves reflection v1 and v1alpha for `service_names` (both reflection services are added to the list)."""
    register_v1_descriptor()
    names = tuple(dict.fromkeys((*service_names, *SERVICES)))
    servicer = reflection.ReflectionServicer(names)
    alpha_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=alpha.ServerReflectionRequest.FromString,
        response_serializer=alpha.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": method}),))


def register_v1_descriptor() -> None:
    """Adds grpc/reflection/v1/reflection.proto to the default pool, once (a no-op when something else already did)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    pool.AddSerializedFile(v1_file_proto().SerializeToString())


def v1_file_proto() -> descriptor_pb2.FileDescriptorProto:
    """v1alpha's file descriptor with its package, name and options moved to v1."""
    proto = descriptor_pb2.FileDescriptorProto()
    alpha.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, _V1_PACKAGE
    proto.options.Clear()
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    proto.options.java_multiple_files = True
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    old, new = f".{_ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old):]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old):]
            method.output_type = new + method.output_type[len(old):]
    return proto
