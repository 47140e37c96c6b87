"""The checked-in generated code is what grpcio-tools makes from the .proto files today.

The generators stamp their own versions into the code (grpcio-tools' GRPC_GENERATED_VERSION, the
protobuf version protoc checks at import); a fresh machine may install a newer grpcio-tools than the
one that generated the checked-in files, which is not staleness, so those stamps are left out of the
comparison. Everything generated from the .proto files is compared byte for byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"

_STAMPS = [
    re.compile(r"^GRPC_GENERATED_VERSION = '[^']*'$", re.M),
    re.compile(r"^# Protobuf Python Version: .*$", re.M),
    re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)", re.S),
]


def without_version_stamps(code: str) -> str:
    for stamp in _STAMPS:
        code = stamp.sub("<generator version>", code)
    return code


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
        assert without_version_stamps(checked_in.read_text()) == without_version_stamps(fresh.read_text()), (
            f"{checked_in} is stale: run `make proto`")


def test_only_version_stamps_are_left_out() -> None:
    stamped = "GRPC_GENERATED_VERSION = '1.85.1'\nx = 1\n"
    assert without_version_stamps(stamped) == without_version_stamps(stamped.replace("1.85.1", "1.85.4"))
    assert without_version_stamps(stamped) != without_version_stamps(stamped.replace("x = 1", "x = 2"))
    checked_in = (PROTO_ROOT / "kinetoscope" / "v1" / "kinetoscope_pb2.py").read_text()
    assert without_version_stamps(checked_in).count("<generator version>") == 2, "both protobuf stamps found"
    assert "DESCRIPTOR" in without_version_stamps(checked_in), "the generated descriptor is still compared"
