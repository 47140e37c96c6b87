"""Benchmark of `Maximize` over gRPC on loopback against the in-process engine for the same job.

The service adds a request plan, a job queue, the device's slot thread, progress events and the
optimized inputs streamed back in chunks; the client adds a GetModel call and the
reassembly. For a job worth running remotely that must stay small against the engine's
own time (target ≤ 1.05). The server is `kinetoscope serve` on port 0 in its own process
(as deployed), on a temporary store, with the same thread count; both run the same objectives,
settings, iterations, batch and seed, and must reach the same activations.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from benchlib import machine_line
from quiet import Guard, guard_for
from suite import Options, Report, Verdict, at_most

import kinetoscope.model_zoo as zoo
from kinetoscope.client.client import Client
from kinetoscope.server.engine import Channel, MaximizeConfig, Setting, maximize
from kinetoscope.server.importer import ImportedModel, import_model
from kinetoscope.v1 import kinetoscope_pb2 as pb

SECTION = "## gRPC loopback vs in-process"
TARGET = at_most(1.05)
MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
LAYER = "conv_fusion"


@dataclass(frozen=True)
class Job:
    units: int
    iterations: int

    @property
    def label(self) -> str:
        return f"two_stream_small, {self.units} × Channel('{LAYER}', c), {self.iterations} steps"


@dataclass
class Result:
    job: Job
    local: list[float] = field(default_factory=list)
    remote: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    """The handler's own time (MaximizeSummary.seconds): plan, queue, engine and result events."""
    ratios: list[float] = field(default_factory=list)
    max_diff: float = 0.0

    def ratio(self) -> float:
        return statistics.median(self.ratios)


def jobs(smoke: bool) -> list[Job]:
    return [Job(16, 4), Job(1, 4)] if smoke else [Job(16, 40), Job(1, 40)]


def in_process(model: ImportedModel, job: Job) -> tuple[float, np.ndarray]:
    config = MaximizeConfig(iterations=job.iterations, max_batch=job.units, seed=0)
    start = time.perf_counter()
    result = maximize(model, [Channel(LAYER, c) for c in range(job.units)], [Setting()], config)
    seconds = time.perf_counter() - start
    return seconds, np.array([row[0].activation for row in result.results])


def over_grpc(client: Client, name: str, job: Job) -> tuple[float, float, np.ndarray]:
    objectives = [pb.Objective(terms=[pb.Target(kind=pb.Target.CHANNEL, layer=LAYER, channel=c)]) for c in range(job.units)]
    options = pb.MaximizeOptions(iterations=job.iterations, max_batch=job.units, seed=0)
    start = time.perf_counter()
    result = client.maximize(name, objectives, ((1.0, 1.0),), options=options)
    seconds = time.perf_counter() - start
    return seconds, result.seconds, np.array([row[0].activation for row in result.results])


def measure(model: ImportedModel, client: Client, name: str, job: Job, repeats: int, guard: Guard) -> Result:
    result = Result(job)
    in_process(model, job)  # warm-up; the server's first call also imports the stored model into its cache
    over_grpc(client, name, job)
    for repetition in range(repeats):
        # the side that runs first alternates, so that drift and the previous side's after-effects hit both alike
        if repetition % 2:
            remote, server, b = guard.run(lambda: over_grpc(client, name, job))
            local, a = guard.run(lambda: in_process(model, job))
        else:
            local, a = guard.run(lambda: in_process(model, job))
            remote, server, b = guard.run(lambda: over_grpc(client, name, job))
        result.local.append(local)
        result.remote.append(remote)
        result.server.append(server)
        result.ratios.append(remote / local)
        result.max_diff = max(result.max_diff, float(np.abs(a - b).max()))
    return result


def reason(r: Result) -> str:
    local, remote, server = (statistics.median(v) * 1e3 for v in (r.local, r.remote, r.server))
    return (f"in-process {local:.0f} ms; over gRPC {remote:.0f} ms, of which the server handler took {server:.0f} ms "
            f"(plan, job queue, engine on the device's slot thread, progress and result events) and {remote - server:.0f} ms "
            f"went to the channel, GetModel and the client's reassembly; the handler itself is "
            f"{server / local:.2f}× the in-process call")


def serve_process(store: Path, threads: int) -> tuple[subprocess.Popen, int]:
    """`kinetoscope serve` in its own process, as it is deployed, on a free loopback port.

    Not a server inside this process: its calls run on its slot threads, and once this
    process's main thread has run torch (the in-process side), libgomp sees two thread
    teams on two cores and its barriers fall back to sleeping, which halves the speed of
    a small network in the slot thread (measured: 1.5 s against 0.75 s for the same job).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "kinetoscope.server.main", "--address", "127.0.0.1:0", "--store", str(store), "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    for line in process.stdout:
        found = re.match(r"kinetoscope serving on 127\.0\.0\.1:(\d+)", line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
            return process, int(found[1])
    process.wait()
    raise RuntimeError("kinetoscope serve did not start")


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    torch.set_num_threads(options.threads)
    guard = guard_for(options.smoke, options.wait)
    repeats = options.reps(9, smoke=1)
    one_unit_repeats = options.reps(25, smoke=1)  # a one-unit pair takes a sixth of a second; more pairs, a steadier median
    model = import_model(MODEL)
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-") as store:
        server, port = serve_process(Path(store), options.threads)
        try:
            with Client(f"127.0.0.1:{port}") as client:
                name = client.import_model(MODEL, name="two_stream_small").name
                results = [measure(model, client, name, job, one_unit_repeats if job.units == 1 else repeats, guard)
                           for job in jobs(options.smoke)]
        finally:
            server.terminate()
            server.wait(timeout=60)
    found = [Verdict("5 Maximize over gRPC loopback / in-process", r.job.label, r.ratio(), TARGET,
                     "" if TARGET.met(r.ratio()) else reason(r)) for r in results]
    lines = ["| job | in-process (ms) | gRPC loopback (ms) | server handler (ms) | max activation diff | ratio | target |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r.job.label} | {statistics.median(r.local) * 1e3:.0f} | {statistics.median(r.remote) * 1e3:.0f} | "
                     f"{statistics.median(r.server) * 1e3:.0f} | {r.max_diff:.1e} | {r.ratio():.3f} | "
                     f"{TARGET} {TARGET.verdict(r.ratio())} |")
    text = "\n".join([
        SECTION,
        "",
        f"`{command}` — {machine_line(options.threads)}; median of {repeats} interleaved repetitions of the 16-unit "
        f"call and {one_unit_repeats} of the one-unit call, the side that runs first alternating.",
        "",
        "In-process: `maximize(model, objectives, [Setting()], MaximizeConfig(iterations, max_batch, seed=0))`.",
        "gRPC: `Client.maximize` against `kinetoscope serve --address 127.0.0.1:0` in its own process on a",
        "temporary store (insecure channel, default progress events, the optimized inputs streamed back),",
        "whole call including GetModel and reassembly. Ratio: gRPC time over in-process time.",
        "",
        *lines,
        "",
        *guard.notes(),
    ]).rstrip() + "\n"
    return Report(SECTION, text, found, guard.notes())
