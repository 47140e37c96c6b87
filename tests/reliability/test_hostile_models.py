"""Hostile and broken models through a real server: each gets its status code, the server keeps serving, nothing is written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import grpc
import numpy as np
import pytest

from kinetoscope.v1 import kinetoscope_pb2 as pb
from tests.service.helpers import channel_objectives, code_of, upload

from .hostile import conv_model, hostile_cases

CASES = hostile_cases()


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _scratch_entries() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("kinetoscope")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_model_gets_its_status_and_the_server_keeps_serving(server, case) -> None:
    before, scratch = _tree(server.store), _scratch_entries()
    code, details = code_of(server.models.ImportModel, upload(case.data, name=case.name, external=case.external), timeout=120)
    assert code.name == case.expected, details
    assert details and "internal" not in details.lower()
    assert server.serving()
    assert _tree(server.store) == before  # nothing stored, no partial folder left
    assert _scratch_entries() <= scratch
    assert server.models.ListModels(pb.ListModelsRequest(), timeout=10).models == []


def test_external_names_with_paths_are_refused_before_the_upload_is_read(server) -> None:
    data = conv_model().SerializeToString()
    for name in ("../secret.bin", "/etc/passwd", "sub/w.bin", ".."):
        code, details = code_of(server.models.ImportModel, upload(data, external={name: b"x" * 432}), timeout=30)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "plain file name" in details
    assert server.serving()


def test_a_symlink_planted_in_the_store_is_not_followed(server, tmp_path) -> None:
    """A stored model whose external file was swapped for a symlink to a file outside imports nothing from it."""
    model = conv_model()
    weight = model.graph.initializer[0]
    blob = bytes(weight.raw_data)
    weight.ClearField("raw_data")
    weight.data_location = 1  # EXTERNAL
    for key, value in (("location", "w.bin"), ("offset", "0"), ("length", str(len(blob)))):
        weight.external_data.add(key=key, value=value)
    info = server.models.ImportModel(upload(model.SerializeToString(), name="planted", external={"w.bin": blob}), timeout=120)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(len(blob) // 4, 7.0, np.float32).tobytes())
    stored = server.store / "models" / info.id / "external" / "w.bin"
    stored.unlink()
    stored.symlink_to(secret)
    request = pb.MaximizeRequest(model="planted", objectives=channel_objectives("y", [0]), options=pb.MaximizeOptions(iterations=2))
    code, details = code_of(server.vis.Maximize, request, timeout=120)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "w.bin" in details and "not uploaded" in details
    assert server.serving()
    server.models.DeleteModel(pb.DeleteModelRequest(model="planted"), timeout=10)
