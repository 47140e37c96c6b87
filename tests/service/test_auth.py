"""Bearer token: every kinetoscope.v1 RPC needs it; health and reflection answer without one. TLS where openssl can make a certificate."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kinetoscope.server.main import create_server
from kinetoscope.v1 import kinetoscope_pb2 as pb, kinetoscope_pb2_grpc as pb_grpc

from .helpers import code_of, start

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("auth"), token=TOKEN)
    yield running
    running.stop()


def test_missing_or_wrong_token_is_unauthenticated(guarded) -> None:
    for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", TOKEN),)):
        code, details = code_of(guarded.models.ListModels, pb.ListModelsRequest(), metadata=metadata, timeout=10)
        assert code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in details
    # streaming methods too, both ways
    code, _ = code_of(guarded.vis.Maximize, pb.MaximizeRequest(model="x"), timeout=10)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = code_of(guarded.models.ImportModel, iter([pb.ImportModelRequest(header=pb.ImportHeader())]), timeout=10)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert guarded.serving()  # no token needed for health


def test_reflection_answers_without_the_token_and_reveals_no_data(guarded) -> None:
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    database = ProtoReflectionDescriptorDatabase(guarded.channel)
    assert "kinetoscope.v1.ModelService" in database.get_services()
    health = DescriptorPool(database).FindServiceByName("grpc.health.v1.Health")
    assert health.methods_by_name["Check"].output_type.full_name == "grpc.health.v1.HealthCheckResponse"
    # describing the contract opens nothing else
    code, _ = code_of(guarded.models.ListModels, pb.ListModelsRequest(), timeout=10)
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_the_right_token_is_let_through(guarded) -> None:
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    assert guarded.models.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10).models == []
    code, _ = code_of(guarded.models.GetModel, pb.GetModelRequest(model="x"), metadata=metadata, timeout=10)
    assert code == grpc.StatusCode.NOT_FOUND


def test_call_credentials_work_as_a_client_would_send_them(guarded) -> None:
    # access_token_call_credentials sends `authorization: Bearer <token>`; gRPC only sends them over TLS or local channels.
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(TOKEN))
    with grpc.secure_channel(f"127.0.0.1:{guarded.port}", credentials) as channel:
        stub = pb_grpc.ModelServiceStub(channel)
        assert stub.ListModels(pb.ListModelsRequest(), timeout=10).models == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_with_a_token(tmp_path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server, port = create_server(store_dir=tmp_path / "store", token=TOKEN, tls=(cert.read_bytes(), key.read_bytes()))
    server.start()
    try:
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=cert.read_bytes()), grpc.access_token_call_credentials(TOKEN))
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            assert pb_grpc.ModelServiceStub(channel).ListModels(pb.ListModelsRequest(), timeout=10).models == []
        with grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            code, _ = code_of(pb_grpc.ModelServiceStub(channel).ListModels, pb.ListModelsRequest(), timeout=10)
            assert code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop(None).wait()
