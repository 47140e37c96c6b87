"""The engine benchmark still runs: `bench/engine_step.py --quick` exits 0 and prints its ratios.

A smoke run on a busy test machine: it checks that the figures are produced, never what
they are.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "engine_step.py"
NUMBER = r"[0-9]+\.[0-9]+"


def test_quick_run_prints_the_ratios() -> None:
    results = SCRIPT.parent / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for batch in (1, 16):
        assert re.search(rf"^ratio step .* batch {batch}: {NUMBER} ", out, re.M), out
    assert re.search(rf"^ratio batching .*: {NUMBER} \(engine gain {NUMBER}x, bare gain {NUMBER}x", out, re.M), out
    after = results.read_bytes() if results.exists() else None
    assert after == before, "--quick leaves RESULTS.md alone"
