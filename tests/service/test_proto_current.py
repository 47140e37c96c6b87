"""The checked-in generated code is what grpcio-tools makes from the .proto files today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


def test_generated_code_is_current(tmp_path) -> None:
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / "kinetoscope" / "v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={tmp_path}",
         f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", *protos],
        check=True,
    )
    generated = sorted((tmp_path / "kinetoscope" / "v1").glob("*_pb2*.py*"))
    assert generated
    for fresh in generated:
        checked_in = PROTO_ROOT / "kinetoscope" / "v1" / fresh.name
        assert checked_in.read_text() == fresh.read_text(), f"{checked_in} is stale: run `make proto`"
