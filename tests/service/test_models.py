"""ModelService over a real server: import in chunks, list, get with the catalog, delete, and every way an upload is refused."""

from __future__ import annotations

import itertools
import json

import grpc
import pytest

from kinetoscope.server.service import ServiceLimits
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .helpers import TRAINED, code_of, declarations, import_other, import_trained, start, upload


def test_import_list_get_delete(fresh) -> None:
    info = import_trained(fresh, name="small")
    assert len(info.id) == 16 and info.name == "small"
    assert [(i.name, list(i.shape), i.kind, i.layout) for i in info.inputs] == [
        ("rgb", [1, 3, 32, 32], "image", "NCHW"), ("flow", [1, 20, 32, 32], "stacked_flow", "NCHW")]
    assert list(info.inputs[0].inferred) == ["value_range"]  # the kind was declared
    assert (info.inputs[0].low, info.inputs[0].high) == (-128.0, 127.0)
    assert 0 <= info.parity.max_rel_err <= 1e-4
    assert list(info.outputs) == ["logits"] and len(info.class_names) == 10
    assert info.class_names[0] == json.loads(info.metadata["class_names"])[0]
    assert info.bn_folded > 0 and info.imported_at > 0

    listed = fresh.models.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert [(m.id, m.name) for m in listed] == [(info.id, "small")]

    for ref in ("small", info.id, info.id[:8]):
        detail = fresh.models.GetModel(pb.GetModelRequest(model=ref), timeout=10)
        assert detail.info.id == info.id
    assert len(detail.layers) == info.layer_count
    fusion = next(layer for layer in detail.layers if layer.name == "conv_fusion")
    assert fusion.channels == 64 and list(fusion.shape) == [1, 64, 8, 8] and fusion.streams == "fusion"
    assert set(fusion.inputs) == {"rgb", "flow"}
    assert fusion.stride["rgb"].axes["H"] == 4.0 and fusion.receptive_field["flow"].axes["T"] == 10.0
    assert detail.layers[-1].name == "logits" and detail.layers[-1].channels == 10

    assert fresh.models.DeleteModel(pb.DeleteModelRequest(model="small"), timeout=10).id == info.id
    assert not fresh.models.ListModels(pb.ListModelsRequest(), timeout=10).models
    assert code_of(fresh.models.GetModel, pb.GetModelRequest(model=info.id), timeout=10)[0] == grpc.StatusCode.NOT_FOUND


def test_unknown_model_is_not_found(shared) -> None:
    for call, request in ((shared.models.GetModel, pb.GetModelRequest(model="nope")),
                          (shared.models.DeleteModel, pb.DeleteModelRequest(model="nope"))):
        code, details = code_of(call, request, timeout=10)
        assert code == grpc.StatusCode.NOT_FOUND and "nope" in details and "small" in details
    assert code_of(shared.models.GetModel, pb.GetModelRequest(), timeout=10)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert shared.serving()


@pytest.mark.parametrize("blob", [b"\x00garbage, not protobuf" * 1000, b"\x08\x07" + b"\x12\x03abc"], ids=["bytes", "protobuf"])
def test_garbage_upload_is_invalid_argument(shared, blob) -> None:
    before = [m.name for m in shared.models.ListModels(pb.ListModelsRequest(), timeout=10).models]
    code, details = code_of(shared.models.ImportModel, upload(blob, name="junk"), timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an ONNX model" in details
    assert shared.serving()
    after = [m.name for m in shared.models.ListModels(pb.ListModelsRequest(), timeout=10).models]
    assert "small" in before and after == before  # the shared store keeps what other tests imported; nothing is added


def _endless(header: pb.ImportHeader, pulled: list[int], file: str = ""):
    yield pb.ImportModelRequest(header=header)
    for _ in itertools.count():
        pulled.append(1)
        yield pb.ImportModelRequest(chunk=pb.FileChunk(file=file, data=b"\x00" * (1 << 20)))


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    running = start(tmp_path_factory.mktemp("tight"), limits=ServiceLimits(max_upload_bytes=4 << 20))
    yield running
    running.stop()


def test_oversize_upload_is_refused_from_its_header(tight) -> None:
    pulled: list[int] = []
    header = pb.ImportHeader(name="big", model_bytes=64 << 30)
    code, details = code_of(tight.models.ImportModel, _endless(header, pulled), timeout=60)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"{64 << 30:,}" in details and f"{4 << 20:,}" in details
    assert tight.serving()


def test_oversize_upload_is_refused_once_the_bytes_pass_the_limit(tight) -> None:
    pulled: list[int] = []
    header = pb.ImportHeader(name="big")  # size not announced: the server counts
    code, details = code_of(tight.models.ImportModel, _endless(header, pulled), timeout=60)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "passed" in details
    assert len(pulled) < 64 * 5  # the stream is endless: the refusal came while it was being sent
    lying = pb.ImportHeader(name="big", model_bytes=1 << 20, external_files={"w.bin": 1 << 20})
    code, _ = code_of(tight.models.ImportModel, _endless(lying, pulled, file="w.bin"), timeout=60)
    assert code == grpc.StatusCode.INVALID_ARGUMENT  # more than the header said: refused before the limit
    assert tight.serving()


def test_chunks_for_undeclared_files_are_refused(shared) -> None:
    def requests():
        yield pb.ImportModelRequest(header=pb.ImportHeader(name="x", model_bytes=10, external_files={"weights.bin": 4}))
        yield pb.ImportModelRequest(chunk=pb.FileChunk(file="other.bin", data=b"1234"))
    code, details = code_of(shared.models.ImportModel, requests(), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'other.bin'" in details and "'weights.bin'" in details
    assert shared.serving()


@pytest.mark.parametrize("requests, expected", [
    ([pb.ImportModelRequest(chunk=pb.FileChunk(data=b"abc"))], "starts with an ImportHeader"),
    ([], "starts with an ImportHeader"),
    ([pb.ImportModelRequest(header=pb.ImportHeader(model_bytes=10)),
      pb.ImportModelRequest(chunk=pb.FileChunk(data=b"abc"))], "declared 10 bytes but 3 arrived"),
    ([pb.ImportModelRequest(header=pb.ImportHeader(model_bytes=3)),
      pb.ImportModelRequest(header=pb.ImportHeader(model_bytes=3))], "only the first message"),
    ([pb.ImportModelRequest(header=pb.ImportHeader(external_files={"../etc/passwd": 3}))], "../etc/passwd"),
    ([pb.ImportModelRequest(header=pb.ImportHeader(inputs=[pb.InputDeclaration(name="rgb", kind="picture")]))], "unknown kind"),
], ids=["no-header", "empty", "short", "two-headers", "path", "kind"])
def test_malformed_uploads_are_invalid_argument(shared, requests, expected) -> None:
    code, details = code_of(shared.models.ImportModel, iter(requests), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and expected in details
    assert shared.serving()


def test_declarations_that_contradict_the_graph_are_invalid_argument(shared) -> None:
    wrong = declarations((("rgb", (1, 3, 64, 64), "image"), ("nope", (1, 2, 32, 32), "stacked_flow")))
    code, details = code_of(shared.models.ImportModel, upload(TRAINED.read_bytes(), inputs=wrong), timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "nope" in details
    assert shared.serving()


def test_the_python_client_deletes_a_model_by_name_and_returns_its_id(fresh) -> None:
    from kinetoscope.client.client import Client  # noqa: PLC0415

    first = import_trained(fresh, name="small")
    second = import_other(fresh)
    with Client(f"127.0.0.1:{fresh.port}") as client:
        assert sorted(m.name for m in client.list_models()) == ["other", "small"]
        assert client.delete_model("small") == first.id
        assert [(m.id, m.name) for m in client.list_models()] == [(second.id, "other")]
        with pytest.raises(grpc.RpcError) as again:
            client.delete_model("small")
        assert again.value.code() == grpc.StatusCode.NOT_FOUND and "small" in again.value.details()
        assert client.delete_model(second.id[:8]) == second.id  # an id prefix names it too
        assert client.list_models() == []
