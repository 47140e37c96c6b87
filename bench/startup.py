"""Benchmark of the CLI's start-up: `kinetoscope layers` and `kinetoscope import` against the floor of this stack.

Any Python CLI built on torch, onnxruntime and gRPC pays at least
`python -c "import torch, onnxruntime, grpc"` before it does anything. A user meets
kinetoscope's start-up on every command, so each command is timed as a whole process,
exactly as typed: the installed console script beside this interpreter, on the embedded
default server and a local store. `layers` reads a stored model's catalog; `import`
brings the zoo's trained two-stream model (0.3 MB) into a fresh store, its sandboxed
import child included. (No peak RSS here: a child's ru_maxrss starts from this large
process's at fork and survives exec, so it would report the benchmark, not the command.)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import machine_line
from quiet import guard_for
from suite import Options, Report, Verdict, at_most

import kinetoscope.model_zoo as zoo

SECTION = "## CLI start-up"
FLOOR = [sys.executable, "-c", "import torch, onnxruntime, grpc"]
TARGETS = {"layers": at_most(1.5), "import": at_most(2.5)}


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)


def console_script() -> Path:
    return Path(sys.executable).parent / "kinetoscope"


def timed_process(command: list[str], env: dict[str, str], sample: Sample) -> None:
    """One whole process, in wall seconds."""
    began = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()[-500:]}")
    sample.seconds.append(elapsed)


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    guard = guard_for(options.smoke, options.wait)
    repeats = options.reps(7, smoke=1)
    model = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
    script = str(console_script())
    samples = {name: Sample() for name in ("floor", "layers", "import")}
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-startup-") as folder:
        base = dict(os.environ, KINETOSCOPE_HOME=str(Path(folder) / "store"))
        subprocess.run([script, "import", str(model), "--name", "bench"], env=base, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the store `layers` reads; warms the page cache
        for repetition in range(repeats):
            fresh = Path(folder) / f"fresh-{repetition}"
            guard.run(lambda: timed_process(FLOOR, base, samples["floor"]))
            guard.run(lambda: timed_process([script, "layers", "bench"], base, samples["layers"]))
            guard.run(lambda: timed_process([script, "import", str(model)], dict(base, KINETOSCOPE_HOME=str(fresh)),
                                            samples["import"]))
            shutil.rmtree(fresh, ignore_errors=True)
    floor = statistics.median(samples["floor"].seconds)
    rows, verdicts = [], []
    for name, sample in samples.items():
        seconds = statistics.median(sample.seconds)
        ratio = seconds / floor
        rows.append(f"| {name} | {seconds:.2f} | {ratio:.2f}× |")
        if name in TARGETS:
            verdicts.append(Verdict(f"8 CLI {name} / import torch, onnxruntime, grpc", "two_stream_small (0.3 MB)",
                                    ratio, TARGETS[name], unit="×"))
    text = "\n".join([
        SECTION,
        "",
        f"`{command}` — {machine_line(1)}; median of {repeats} interleaved repetitions, each a whole process.",
        "",
        "floor: `python -c \"import torch, onnxruntime, grpc\"`; layers: `kinetoscope layers bench` on a store holding",
        "the zoo's trained two-stream model; import: `kinetoscope import two_stream_small.onnx` into a fresh store",
        "(embedded server, sandboxed import child).",
        "",
        "| command | seconds | / floor |",
        "|---|---:|---:|",
        *rows,
        *guard.notes(),
    ]).rstrip() + "\n"
    return Report(SECTION, text, verdicts, guard.notes())
