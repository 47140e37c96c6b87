"""Benchmark of importing a large 3D ResNet against creating an onnxruntime session for the same file,
and of the memory an import of a model over 2 GiB takes.

An onnxruntime session is the least any tool pays to run an ONNX file; kinetoscope's
import also checks, normalizes, folds BatchNorm, converts to torch and proves the result
against onnxruntime (forward on a seeded input, gradients w.r.t. every input), then
catalogs every layer. This reports the ratio and where the import's time goes, stage
by stage (import_model's progress callback marks each stage's start).

Memory: a chain of 1×1 convolutions with 2.2 GB of weights in an external-data file is
imported in a fresh process; its peak resident set (the interpreter, torch and
onnxruntime included) is compared with the model's bytes. The imported model itself
holds the weights twice (the ONNX graph and the torch module).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from benchlib import ZooModel, machine_line
from onnx import TensorProto, helper
from quiet import guard_for
from suite import Options, Report, Verdict, at_most

from kinetoscope.server.importer import import_model

SECTION = "## Import time"
TIME_TARGET = at_most(5)
MEMORY_TARGET = at_most(2.5)


@dataclass(frozen=True)
class WideModel:
    """`layers` 1×1 convolutions of `channels` → `channels`, weights in one external-data file."""

    layers: int
    channels: int

    @property
    def weight_bytes(self) -> int:
        return self.layers * self.channels * self.channels * 4

    @property
    def label(self) -> str:
        return f"{self.layers} × conv 1×1 {self.channels}→{self.channels}, external data"

    def write(self, folder: Path) -> Path:
        """The model and its weights file, written one weight at a time (the bench never holds them all)."""
        rng = np.random.default_rng(0)
        nodes, weights, previous = [], [], "x"
        size = self.channels * self.channels * 4
        with open(folder / "weights.bin", "wb") as blob:
            for index in range(self.layers):
                weight = TensorProto(name=f"w{index}", data_type=TensorProto.FLOAT, dims=[self.channels, self.channels, 1, 1],
                                     data_location=TensorProto.EXTERNAL)
                for key, value in (("location", "weights.bin"), ("offset", str(index * size)), ("length", str(size))):
                    weight.external_data.add(key=key, value=value)
                weights.append(weight)
                blob.write((rng.standard_normal((self.channels, self.channels), dtype=np.float32) / 64).tobytes())
                output = "y" if index == self.layers - 1 else f"h{index}"
                nodes.append(helper.make_node("Conv", [previous, weight.name], [output], name=f"conv{index}"))
                previous = output
        shape = [1, self.channels, 1, 1]
        graph = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 10
        path = folder / "wide.onnx"
        path.write_bytes(model.SerializeToString())
        return path


def wide_model(smoke: bool) -> WideModel:
    """33 × 4096² fp32 weights ≈ 2.2 GB (over protobuf's 2 GiB); the smoke run takes 8 MB."""
    return WideModel(2, 1024) if smoke else WideModel(33, 4096)


HIGH_WATER = ("import os\n"
              "if os.path.exists('/proc/self/status'):\n"
              "    print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n")
IMPORT_IN_CHILD = "import sys\nfrom kinetoscope.server.importer import import_model\nimport_model(sys.argv[1])\n" + HIGH_WATER
FLOOR_IN_CHILD = "import kinetoscope.server.importer.pipeline\n" + HIGH_WATER


def peak_rss(code: str, *args: str) -> int:
    """Peak resident bytes of a fresh interpreter running `code`.

    os.wait4's ru_maxrss, unless the child reports its own high-water mark: Linux keeps
    ru_maxrss across exec, so a child forked from a bigger parent reports the parent's
    size, and the kernel's VmHWM of the child's own memory is exact."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=errors)
        output = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"the import child failed: {errors.read().decode(errors='replace').strip()[-500:]}")
    reported = output.decode().strip().splitlines()
    return int(reported[-1]) * 1024 if reported and reported[-1].isdigit() else usage.ru_maxrss * 1024


@dataclass(frozen=True)
class Memory:
    model: WideModel
    file_bytes: int
    peak: int
    floor: int

    @property
    def ratio(self) -> float:
        return self.peak / self.file_bytes


def measure_memory(smoke: bool) -> Memory:
    chosen = wide_model(smoke)
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-wide-") as folder:
        path = chosen.write(Path(folder))
        file_bytes = sum(item.stat().st_size for item in Path(folder).iterdir())
        floor = peak_rss(FLOOR_IN_CHILD)
        peak = peak_rss(IMPORT_IN_CHILD, str(path))
    return Memory(chosen, file_bytes, peak, floor)


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


def time_pairs(path: str, repeats: int, smoke: bool, wait: float, threads: int) -> dict:
    """Sessions and imports of `path`, interleaved, the side that runs first alternating (each may leave memory to
    the other); run by `timings_in_child` in a fresh interpreter."""
    torch.set_num_threads(threads)
    guard = guard_for(smoke, wait)
    timings, file = Timings(), Path(path)
    timed_session(file, Timings())  # warm-up: page cache, onnxruntime's first session
    timed_import(file, Timings())  # and the importer's first (torch's and onnx2torch's first calls)
    for repetition in range(repeats):
        sides = [lambda: timed_session(file, timings), lambda: timed_import(file, timings)]
        for side in sides[::-1] if repetition % 2 else sides:
            guard.run(side)
    return {"imports": timings.imports, "sessions": timings.sessions, "stages": timings.stages, "notes": guard.notes()}


def timings_in_child(path: Path, repeats: int, options: Options) -> tuple[Timings, list[str]]:
    """`time_pairs` in a fresh interpreter with the C allocator at its defaults, as imports run for users (the
    server's import children and `kinetoscope import`) and as any tool creates an onnxruntime session. The
    benchmark process keeps freed memory for the engine's benchmarks (run_all.py); there a session took 0.07 s
    instead of 0.135 s and an import no less than its 0.47 s, so the ratio measured the allocator setting."""
    code = (f"import json, sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nimport import_time\n"
            f"print(json.dumps(import_time.time_pairs({str(path)!r}, {repeats}, {options.smoke}, {options.wait}, "
            f"{options.threads})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the timing child failed: {done.stderr.strip()[-2000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return Timings(found["imports"], found["sessions"], found["stages"]), found["notes"]


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    repeats = options.reps(9, smoke=1)  # one import moves ±15 % between repetitions on this machine
    chosen = model(options.smoke)
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-") as folder:
        path = chosen.export(Path(folder))
        megabytes = os.path.getsize(path) / 1e6
        timings, notes = timings_in_child(path, repeats, options)
    memory = measure_memory(options.smoke)  # not repeated: memory does not depend on other processes
    total, session = statistics.median(timings.imports), statistics.median(timings.sessions)
    ratio = total / session
    stages = sorted(timings.stages.items(), key=lambda item: -statistics.median(item[1]))
    rows = [f"| {stage} | {statistics.median(times):.2f} | {statistics.median(times) / total:.0%} |" for stage, times in stages]
    slowest, slowest_times = stages[0]
    text = "\n".join([
        SECTION,
        "",
        f"`{command}` — {machine_line(options.threads)}; median of {repeats} interleaved repetitions, the side that runs "
        "first alternating, in a fresh interpreter with the C allocator at its defaults (as imports run for users: "
        "the server's import children and `kinetoscope import`).",
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
        "",
        f"Peak memory of `import_model(path)` in a fresh process, {memory.model.label}: one run.",
        "",
        "| what | MB |",
        "|---|---:|",
        f"| model and its external data | {memory.file_bytes / 1e6:.0f} |",
        f"| fresh interpreter with the importer loaded (floor) | {memory.floor / 1e6:.0f} |",
        f"| peak RSS of the import | {memory.peak / 1e6:.0f} |",
        f"| ratio (peak RSS / model bytes) | {memory.ratio:.2f}× |",
        *notes,
    ]).rstrip() + "\n"
    verdicts = [
        Verdict("6 import / onnxruntime session creation", f"{chosen.label} ({megabytes:.0f} MB)", ratio, TIME_TARGET,
                unit="×"),
        Verdict("6 import peak RSS / model bytes", f"{memory.model.label} ({memory.file_bytes / 1e6:.0f} MB)",
                memory.ratio, None if options.smoke else MEMORY_TARGET, unit="×"),
    ]
    return Report(SECTION, text, verdicts, notes)
