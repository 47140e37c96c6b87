"""The benchmark suite still runs: `bench/run_all.py --smoke` exits 0, prints every benchmark's ratios and writes its document.

A smoke run on a busy test machine: it checks that the figures are produced, never what
they are. Lucent is installed only for real benchmark runs; without it the peer is
skipped with a note, which is what this checks then.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
NUMBER = r"-?[0-9]+\.[0-9]+"


def test_smoke_run_prints_every_ratio_and_leaves_results_alone(tmp_path: Path) -> None:
    results = BENCH / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    written = tmp_path / "smoke.md"
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--smoke", "--results", str(written)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for batch in (1, 16):
        assert re.search(rf"^ratio 1 engine step .* batch {batch}: {NUMBER}; target ≤ 1\.15", out, re.M), out
    for prefix in ("2 batching gain share", "3 imported folded graph / native torch \\(forward\\)",
                   "3 imported folded graph / native torch \\(forward\\+backward\\)", "4 recording",
                   "5 Maximize over gRPC", "6 import"):
        assert re.search(rf"^ratio {prefix}.*: {NUMBER}", out, re.M), f"{prefix}\n{out}"
    if importlib.util.find_spec("lucent") is not None:
        assert re.search(rf"^ratio 7 peer: Lucent batched .*: {NUMBER}", out, re.M), out
    else:
        assert "Lucent peer skipped" in out, out
    document = written.read_text()
    for title in ("## Summary", "## Missed targets", "## Engine", "## Folded graph vs native torch", "## Recording",
                  "## gRPC loopback vs in-process", "## Import time", "## Peer: Lucent"):
        assert title in document, title
    after = results.read_bytes() if results.exists() else None
    assert after == before, "--smoke leaves RESULTS.md alone"
