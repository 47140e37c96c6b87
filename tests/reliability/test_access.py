"""Access: with a token every RPC but health refuses a missing or wrong one; loopback by default; big uploads cut short."""

from __future__ import annotations

import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kinetoscope.server.main import DEFAULT_ADDRESS, SERVICES, build_parser
from kinetoscope.server.service import ServiceLimits
from kinetoscope.v1 import kinetoscope_pb2 as pb
from tests.service.helpers import code_of, start, upload

from .process import launch

TOKEN = "reliability-token"


def _methods() -> list[tuple[str, bool, bool]]:
    """(path, client streams, server streams) of every kinetoscope.v1 method."""
    return [(f"/{service.full_name}/{method.name}", method.client_streaming, method.server_streaming)
            for service in [pb.DESCRIPTOR.services_by_name[name.rsplit(".", 1)[1]] for name in SERVICES]
            for method in service.methods]


REFLECTION = ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
"""Open without a token: descriptors only, so that tools resolving health through reflection work on a guarded server."""


def _call(channel: grpc.Channel, path: str, client_streams: bool, server_streams: bool, metadata) -> grpc.StatusCode:
    """Sends an empty request (a stream of one) to `path` and returns the status it ends with."""
    request = b""
    make = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}[(client_streams, server_streams)]
    call = make(path, request_serializer=lambda x: x, response_deserializer=lambda x: x)
    try:
        reply = call(iter([request]) if client_streams else request, metadata=metadata, timeout=30)
        if server_streams:
            list(reply)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("access") / "store", token=TOKEN)
    yield running
    running.stop()


def test_every_kinetoscope_rpc_needs_the_token_health_and_reflection_do_not(guarded) -> None:
    methods = _methods()
    assert len(methods) == 17  # 4 model, 1 visualization, 3 recording, 2 analysis, 7 jobs
    for path, client_streams, server_streams in methods:
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),),
                         (("authorization", f"Bearer {TOKEN}x"),)):
            assert _call(guarded.channel, path, client_streams, server_streams, metadata) == grpc.StatusCode.UNAUTHENTICATED, path
        right = _call(guarded.channel, path, client_streams, server_streams, (("authorization", f"Bearer {TOKEN}"),))
        assert right != grpc.StatusCode.UNAUTHENTICATED, path
    health = health_pb2_grpc.HealthStub(guarded.channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    for path in REFLECTION:
        assert _call(guarded.channel, path, True, True, ()) == grpc.StatusCode.OK, path


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_default_bind_is_loopback(tmp_path) -> None:
    assert DEFAULT_ADDRESS.startswith("127.0.0.1:") and build_parser().parse_args([]).address == DEFAULT_ADDRESS
    server = launch(tmp_path / "store")
    try:
        outside = _outside_address()
        if outside is not None:
            with socket.socket() as sock:
                sock.settimeout(5)
                assert sock.connect_ex((outside, server.port)) != 0, "the server answered on a non-loopback address"
        assert server.serving()
    finally:
        server.stop()


def test_an_upload_over_the_limit_is_refused_before_it_is_read(tmp_path) -> None:
    limit = 4 << 20
    running = start(tmp_path / "store", limits=ServiceLimits(max_upload_bytes=limit))
    try:
        # announced too big: refused on the header alone
        code, details = code_of(running.models.ImportModel, upload(b"x" * 64, model_bytes=limit + 1), timeout=30)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and f"{limit:,}" in details
        # announced small but sent big: cut off once the bytes pass the limit, long before the end of the stream
        chunks_sent = [0]

        def lying():
            yield pb.ImportModelRequest(header=pb.ImportHeader(name="liar", model_bytes=0))
            for _ in range(1024):  # 1 GiB in 1 MiB chunks
                chunks_sent[0] += 1
                yield pb.ImportModelRequest(chunk=pb.FileChunk(data=b"\0" * (1 << 20)))

        code, details = code_of(running.models.ImportModel, lying(), timeout=60)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "passed" in details
        assert chunks_sent[0] < 64, chunks_sent[0]
        assert running.serving() and not list((running.store / "models").iterdir())
    finally:
        running.stop()
