"""The import child: a crash, a hang, a memory hog or a kill each become one clear error, and the parent lives on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import numpy as np
import pytest

from kinetoscope.server.importer import ImportOptions, InvalidModel
from kinetoscope.server.sandbox import (
    ChildJob,
    ImportCancelled,
    ImportCrashed,
    ImportLimitExceeded,
    SandboxLimits,
    import_isolated,
    run_child,
)
from kinetoscope.server.service.errors import status_for

from . import child_targets
from .hostile import conv_model, with_external_weight

LIMITS = SandboxLimits(memory_bytes=512 << 20, timeout_s=20)
ROOT = Path(__file__).resolve().parents[2]


def _run(target, limits: SandboxLimits = LIMITS, **kwargs) -> dict:
    return run_child(target, ChildJob([], ImportOptions(), [], limits), [b"abc", b"defg"], limits, **kwargs)


def test_a_child_answers_with_json_and_gets_the_bytes() -> None:
    answer = _run(child_targets.echo)
    assert answer["sizes"] == [3, 4] and answer["pid"] != os.getpid()
    assert answer["main"] != "__mp_main__"  # the parent's main module is not run again in the child


def test_a_segfault_is_invalid_argument() -> None:
    with pytest.raises(ImportCrashed, match="SIGSEGV in stage crash") as caught:
        _run(child_targets.segfault)
    assert status_for(caught.value)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_a_hang_is_stopped_at_the_time_limit() -> None:
    with pytest.raises(ImportLimitExceeded, match=r"longer than 1 s \(in stage hang\)") as caught:
        _run(child_targets.hang, SandboxLimits(memory_bytes=512 << 20, timeout_s=1))
    assert status_for(caught.value)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_memory_hog_hits_the_limit() -> None:
    with pytest.raises(ImportLimitExceeded, match="ran out of memory in stage hog") as caught:
        _run(child_targets.hog_memory)
    assert status_for(caught.value)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_killed_child_is_resource_exhausted() -> None:
    with pytest.raises(ImportLimitExceeded, match="SIGKILL in stage killed"):
        _run(child_targets.killed)


def test_a_reply_that_is_not_json_is_a_crash() -> None:
    with pytest.raises(ImportCrashed, match="TypeError"):
        _run(child_targets.bad_reply)


def test_a_caller_that_goes_away_stops_the_child() -> None:
    with pytest.raises(ImportCancelled) as caught:
        _run(child_targets.hang, should_stop=lambda: True)
    assert status_for(caught.value)[0] == grpc.StatusCode.CANCELLED


def test_a_real_import_in_a_child_matches_its_errors_and_results() -> None:
    described = import_isolated(conv_model().SerializeToString(), limits=LIMITS)
    assert described["layers"] >= 1 and described["parity"]["max_rel_err"] <= 1e-4
    with pytest.raises(InvalidModel, match="not an ONNX model"):
        import_isolated(b"\x00junk" * 100, limits=LIMITS)
    big = conv_model(np.zeros((64, 3, 300, 300), np.float32)).SerializeToString()  # 69 MB of weights
    with pytest.raises(ImportLimitExceeded, match="memory"):  # 16 MiB cannot even hold the file
        import_isolated(big, limits=SandboxLimits(memory_bytes=16 << 20, timeout_s=60))


def test_a_large_upload_is_imported_from_files_the_child_writes(monkeypatch) -> None:
    """Past SPOOL_BYTES the child writes the upload to files and imports from there (weights read tensor by
    tensor); the model, its external data and what the import says of it are the same as from bytes."""
    from kinetoscope.server import sandbox

    base = conv_model()
    external = {"model-0.onnx": bytes(base.graph.initializer[0].raw_data)}  # named like the spooled model file
    model = with_external_weight(base, "model-0.onnx")
    in_memory = import_isolated(model.SerializeToString(), external_data=external, limits=LIMITS)
    monkeypatch.setattr(sandbox, "SPOOL_BYTES", 1)
    spooled = import_isolated(model.SerializeToString(), external_data=external, limits=LIMITS)
    assert spooled["id"] == in_memory["id"] and spooled["catalog"] == in_memory["catalog"]
    assert spooled["parity"]["max_rel_err"] <= 1e-4


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(memory_bytes=0)
    with pytest.raises(ValueError):
        SandboxLimits(timeout_s=0)


def test_a_script_without_a_main_guard_can_import(tmp_path) -> None:
    """Children do not run the caller's main module again, so an unguarded script works."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from kinetoscope.server.library import ModelLibrary
        from kinetoscope.server.store import ModelStore
        library = ModelLibrary(ModelStore({str(tmp_path / 'store')!r}))
        stored = library.import_bytes(open({str(ROOT / 'model_zoo/trained/video3d_small.onnx')!r}, 'rb').read(), name='v')
        print('stored', stored.id)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("stored ") == 1
