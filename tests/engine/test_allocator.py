"""Freed blocks stay with the process: a step's reallocations take no fresh pages from the kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHURN = """
import resource, sys, torch
from kinetoscope.server.allocator import retain_freed_memory
# "start": glibc's starting threshold (128 KiB), fixed; left adaptive, it depends on what ran before
took = retain_freed_memory() if sys.argv[1] == "retain" else retain_freed_memory(128 << 10)
torch.set_num_threads(1)
def step():
    blocks = [torch.empty(10 << 20 >> 2).fill_(1.0) for _ in range(4)]  # 4 x 10 MB, as activations are
    del blocks
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(took, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_step(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True, timeout=120)
    took, faults = out.stdout.split()
    return took, float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retained_memory_is_reused_without_page_faults() -> None:
    took, retained = _faults_per_step("retain")
    _, default = _faults_per_step("start")
    assert took == "True"
    # 40 MB of fresh pages is about 10,000 faults; kept blocks are mostly reused (measured: 10,200 against 2,000)
    assert default > 5000, f"a 128 KiB threshold should hand 10 MB blocks back to the kernel ({default} faults a step)"
    assert retained * 3 < default, f"{retained} page faults a step with freed memory retained, {default} without"
