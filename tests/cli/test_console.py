"""A clean console: on a CLI user's terminal every line is one kinetoscope prints.

"One kinetoscope prints" means: it matches one of the formats below (the commands'
results, their status lines and progress bars, tqdm's clearing of its bar), and no
line looks like third-party logging (gRPC core's `I0000 … chttp2_transport.cc:…`,
absl's `W0000`, Python warnings). Progress is forced on (KINETOSCOPE_PROGRESS=1) so
that the status lines and bars a terminal would show are checked too.
"""

from __future__ import annotations

import re
import time

import pytest

from kinetoscope.client.progress import StepProgress

from .conftest import INPUTS
from .console import TRAINED, kinetoscope

THIRD_PARTY = re.compile(r"[WIEF]\d{4} |\.cc:\d|\.cpp:\d|Warning|warn\(|Traceback|absl|^\[[WE] ")
OURS = [re.compile(pattern) for pattern in (
    r"^importing \S+: (starting the embedded server|starting the import worker|uploading to)",  # import status
    r"^imported small as [0-9a-f]{16}: \d+ layers; inputs ",
    r"^parity vs onnxruntime: max abs ",
    r"^\(kind/range inferred for ",
    r"^layer\s+shape\s+ch\s+receptive field\s+stride\s+streams$",  # layers: the table's header
    r"^\S+\s+\d+(x\d+)+\s+\d+\s+(rgb|flow) [\dx]+.*\s(appearance|motion|fusion)$",  # and its rows
    r"^maximize: preparing \(",  # progress before the first step
    r"^maximize: +\d+%\|.*\| [\d.]+/\d+ \[[\d:]+<[\d:?]+, .*step \d+/\d+\]$",  # the bar
    r"^Channel\('conv_fusion', \d\): γ=0 \S+  γ=1 \S+$",  # maximize's table
    r"^wrote \S+/result\.npz$",
    r"^note: ",
    r"^gallery: \S+/index\.html$",
)]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\r\n]", text) if line.strip()]


def test_every_line_on_the_console_is_ours(tmp_path) -> None:
    home = tmp_path / "home"
    commands = [
        ["import", str(TRAINED), "--name", "small", *INPUTS[:2]],
        ["layers", "small"],
        ["maximize", "small", "--layer", "conv_fusion", "--units", "0-1", "--gamma", "0,1", "--iters", "8", "--out", "out"],
        ["render", "out/result.npz"],
    ]
    printed: list[str] = []
    for argv in commands:
        done = kinetoscope(*argv, home=home, cwd=tmp_path, KINETOSCOPE_PROGRESS="1")
        assert done.returncode == 0, done.stderr
        printed += _lines(done.stdout) + _lines(done.stderr)
    foreign = [line for line in printed if THIRD_PARTY.search(line) or not any(p.search(line) for p in OURS)]
    assert foreign == [], "\n".join(foreign)
    for needed in ("importing two_stream_small.onnx: starting the import worker", "maximize: preparing", "gallery: "):
        assert any(line.startswith(needed) for line in printed), needed


def test_without_a_terminal_only_results_are_printed(tmp_path) -> None:
    done = kinetoscope("--store", str(tmp_path), "models", home=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "no models yet: kinetoscope import MODEL.onnx\n")


class _Event:
    def __init__(self, step: int, done: int, chunk: int = 4, iterations: int = 10, total: int = 8) -> None:
        self.step, self.iterations, self.chunk_start, self.samples_total = step, iterations, done, total
        self.activation = [0.0] * chunk


def test_progress_clock_starts_at_the_first_step() -> None:
    progress = StepProgress(8, "maximize", "first step", enabled=True)
    progress.bar.start_t -= 600  # ten minutes of preparing: native build, compile, worker start
    progress(_Event(step=0, done=0))
    time.sleep(0.2)
    progress(_Event(step=9, done=0))
    rate = progress.bar.format_dict["rate"] or (progress.bar.n - progress.bar.initial) / (
        progress.bar._time() - progress.bar.start_t)
    remaining_s = (progress.bar.total - progress.bar.n) / rate
    progress.close()
    assert progress.bar.n == pytest.approx(4.0)
    assert progress.bar.initial == pytest.approx(0.4)
    # 3.6 units in ~0.2 s: the remaining 4 take well under a few seconds, not hours as measured from the start
    assert remaining_s < 5
