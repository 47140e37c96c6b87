"""What a CLI command's embedded server imports before its first model job: grpc and the store, not torch.

Importing torch, onnx and the converter costs seconds; `kinetoscope layers` or `models`
only read the store, and an import runs in a forkserver child that preloads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("torch", "onnx", "onnxruntime", "onnx2torch", "torchvision")

PROBE = textwrap.dedent('''
    import json, sys
    from kinetoscope.server.main import create_server
    from kinetoscope.server.sandbox import FORKSERVER_PRELOAD
    server, port = create_server("127.0.0.1:0", store_dir=sys.argv[1], device="auto")
    server.start()
    from kinetoscope.client.client import Client
    with Client(f"127.0.0.1:{port}") as client:
        models = client.list_models()
    server.stop(None)
    print(json.dumps({"loaded": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:]),
                      "models": len(models), "preload": FORKSERVER_PRELOAD}))
''')


def test_embedded_server_answers_without_importing_torch(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "store"), *HEAVY],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["models"] == 0
    assert report["loaded"] == [], f"the embedded server imported {report['loaded']} before any model job"
    # the import child still gets everything preloaded: the forkserver imports the pipeline once
    assert "kinetoscope.server.importer.pipeline" in report["preload"]


def test_the_forkserver_preload_brings_the_converter() -> None:
    code = ("import os, sys, importlib; from kinetoscope.server.sandbox import FORKSERVER_PRELOAD; "
            "out = os.dup(1); "  # the preload sends the forkserver's own output to /dev/null
            "[importlib.import_module(m) for m in FORKSERVER_PRELOAD]; "
            "os.write(out, str(all(m in sys.modules for m in ('torch', 'onnx', 'onnxruntime', 'onnx2torch'))).encode())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "True"


def test_the_forkserver_does_not_hold_the_callers_output() -> None:
    """A forkserver holding the command's stdout/stderr kept `kinetoscope import … | cat` waiting for its exit."""
    code = textwrap.dedent('''
        import os, time
        from multiprocessing import forkserver
        from kinetoscope.server.sandbox import warm_up
        warm_up().join(120)
        pid = forkserver._forkserver._forkserver_pid
        for _ in range(600):  # the preload redirects first, then imports for seconds
            if os.readlink(f"/proc/{pid}/fd/2") == os.devnull:
                break
            time.sleep(0.1)
        print(os.readlink(f"/proc/{pid}/fd/1"), os.readlink(f"/proc/{pid}/fd/2"))
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True).stdout
    assert out.split() == [os.devnull, os.devnull]


def test_the_shared_vocabulary_and_what_the_client_reads_with_it_import_no_torch_onnx_or_grpc() -> None:
    """kinetoscope.common is imported by client, service and engine alike; it must cost the client nothing heavy."""
    code = textwrap.dedent('''
        import json, sys
        import kinetoscope.common, kinetoscope.motion
        from kinetoscope.client.render.result import load_result
        from kinetoscope.client.types import MaximizeResult
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:])))
    ''')
    out = subprocess.run([sys.executable, "-c", code, *HEAVY, "grpc"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
