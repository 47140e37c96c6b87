"""Benchmark of importing a large 3D ResNet against creating an onnxruntime session for the same file.

An onnxruntime session is the least any tool pays to run an ONNX file; kinetoscope's
import also checks, normalizes, folds BatchNorm, converts to torch and proves the result
against onnxruntime (forward on seeded inputs, gradients w.r.t. every input), then
catalogs every layer. This reports the ratio and where the import's time goes, stage
by stage (import_model's progress callback marks each stage's start).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime
import torch
from benchlib import ZooModel, machine_line
from quiet import guard_for
from suite import Options, Report, Verdict

from kinetoscope.server.importer import import_model

SECTION = "## Import time"


@dataclass
class Timings:
    imports: list[float] = field(default_factory=list)
    sessions: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)


def model(smoke: bool) -> ZooModel:
    """R(2+1)D-18 at full width is ~126 MB of fp32 weights; the smoke run takes a narrow, short one."""
    return ZooModel("r2plus1d_18", 0.125, 4, 32) if smoke else ZooModel("r2plus1d_18", 1.0, 16, 112)


def timed_import(path: Path, timings: Timings) -> None:
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    import_model(path, progress=lambda stage: marks.append((stage, time.perf_counter())))
    end = time.perf_counter()
    timings.imports.append(end - start)
    marks.append(("", end))
    for (stage, began), (_, ended) in zip(marks, marks[1:]):
        timings.stages.setdefault(stage, []).append(ended - began)
    timings.stages.setdefault("before load (reading the file)", []).append(marks[0][1] - start)


def timed_session(path: Path, timings: Timings) -> None:
    start = time.perf_counter()
    onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    timings.sessions.append(time.perf_counter() - start)


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    torch.set_num_threads(options.threads)
    guard = guard_for(options.smoke, options.wait)
    repeats = options.reps(3, smoke=1)
    chosen = model(options.smoke)
    timings = Timings()
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-") as folder:
        path = chosen.export(Path(folder))
        megabytes = os.path.getsize(path) / 1e6
        timed_session(path, Timings())  # warm-up: page cache, onnxruntime's first session
        for _ in range(repeats):
            guard.run(lambda: timed_session(path, timings))
            guard.run(lambda: timed_import(path, timings))
    total, session = statistics.median(timings.imports), statistics.median(timings.sessions)
    ratio = total / session
    stages = sorted(timings.stages.items(), key=lambda item: -statistics.median(item[1]))
    rows = [f"| {stage} | {statistics.median(times):.2f} | {statistics.median(times) / total:.0%} |" for stage, times in stages]
    slowest, slowest_times = stages[0]
    text = "\n".join([
        SECTION,
        "",
        f"`{command}` — {machine_line(options.threads)}; median of {repeats} interleaved repetitions.",
        "",
        f"{chosen.label}, exported by the zoo: {megabytes:.0f} MB. onnxruntime: `InferenceSession(path,",
        "CPUExecutionProvider)` with its default (full) graph optimization. kinetoscope: `import_model(path)`,",
        "load to catalog (no declarations: inputs are read from the file).",
        "",
        "| what | seconds |",
        "|---|---:|",
        f"| onnxruntime session | {session:.2f} |",
        f"| kinetoscope import | {total:.2f} |",
        f"| ratio (import / session) | {ratio:.1f}× |",
        "",
        "Import stages (from the progress callback):",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
        *rows,
        "",
        f"The largest stage is {slowest} ({statistics.median(slowest_times):.2f} s).",
        *guard.notes(),
    ]).rstrip() + "\n"
    verdict = Verdict("6 import / onnxruntime session creation", f"{chosen.label} ({megabytes:.0f} MB)", ratio, unit="×")
    return Report(SECTION, text, [verdict], guard.notes())
