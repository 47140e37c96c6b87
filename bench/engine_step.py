"""Benchmark of the activation-maximization engine against the bare network.

Every optimizer step of `maximize` runs the truncated graph forward and backward, and
around it jitter, the regularizers R_B and R_TV, Adam, the projection onto the B-ball
and some bookkeeping. This script measures what those add, as the ratio of one engine
step to a bare forward+backward of the same truncated graph at the same batch size
(1, 16 and 64), and whether batching 16 or 64 units into one call pays off as much for
the engine as it does for the bare network. Ratios are formed within one process run,
from medians of interleaved repetitions, so that a slower or busier machine moves both
sides.

    .venv/bin/python bench/engine_step.py            # this benchmark alone; rewrites "## Engine" in bench/RESULTS.md
    .venv/bin/python bench/engine_step.py --smoke    # seconds-long smoke run; writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from benchlib import machine_line, timed, write_section
from engine_tables import PARTS, SINGLE, Row, section, verdicts
from profiling import describe_extra
from quiet import Guard, guard_for
from suite import Options, Report

import kinetoscope.model_zoo as zoo
from kinetoscope.model_zoo.export import export_model
from kinetoscope.server.allocator import retain_freed_memory
from kinetoscope.server.engine import Channel, Logit, MaximizeConfig, Objective, Setting, StepReport, maximize
from kinetoscope.server.engine.inputs import OptimizedInput
from kinetoscope.server.engine.optim.updater import choose_updater
from kinetoscope.server.engine.transforms import compose, standard_transforms
from kinetoscope.server.engine.truncate import truncate
from kinetoscope.server.importer import ImportedModel, import_model

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Engine"
SMALL_MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"


@dataclass(frozen=True)
class Case:
    model: str
    label: str
    objective: Callable[[int], Objective]
    units: int
    """Distinct objectives available; a batch larger than this repeats them under more settings (γ = 0, 1, …)."""
    batches: tuple[int, ...]
    iterations: int
    skip: int
    """Steps left out at the start of every call (allocator and kernel warm-up)."""
    raw_reps: int
    repeats: int = 7
    """Interleaved repetitions in a full run."""

    def samples(self, batch: int) -> tuple[list[Objective], list[Setting]]:
        """`batch` samples as (objectives × settings), as a sweep over units and regularizer settings lays them out."""
        count = min(batch, self.units)
        settings = [Setting(1.0, float(g)) for g in range(batch // count)] if count < batch else [Setting()]
        return [self.objective(c) for c in range(count)], settings


@dataclass
class Timings:
    engine_steps: dict[int, list[float]] = field(default_factory=dict)
    raw: dict[int, list[float]] = field(default_factory=dict)
    step_ratios: dict[int, list[float]] = field(default_factory=dict)
    calls: dict[int, list[float]] = field(default_factory=dict)
    """Whole-call wall times per repetition: key 1 is SINGLE one-unit calls together, key n one n-unit call."""
    raw_totals: dict[int, list[float]] = field(default_factory=dict)
    """Per repetition, the wall time of as many bare passes as the engine's calls at that batch make
    steps (SINGLE × iterations at batch 1, iterations otherwise): the bare side of a batching gain."""
    parts: dict[int, dict[str, list[float]]] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_call(model: ImportedModel, objectives: Sequence[Objective], settings: Sequence[Setting], iterations: int,
                max_batch: int, skip: int, device: torch.device) -> tuple[float, list[float]]:
    """Wall time of one `maximize` call and its step durations (on_step to on_step, first `skip` left out)."""
    marks: list[tuple[int, int, float]] = []

    def on_step(report: StepReport) -> None:
        _sync(device)
        marks.append((report.done, report.step, time.perf_counter()))

    # compiled as in a real run (64+ iterations on the CPU), though the benchmark's calls are shorter
    config = MaximizeConfig(iterations=iterations, max_batch=max_batch, compile=None if device.type != "cpu" else True)
    start = time.perf_counter()
    maximize(model, objectives, settings, config, on_step=on_step, device=device)
    _sync(device)
    wall = time.perf_counter() - start
    steps = [b[2] - a[2] for a, b in zip(marks, marks[1:]) if a[0] == b[0] and b[1] > skip]
    return wall, steps


def bare_inputs(model: ImportedModel, batch: int, device: torch.device) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, *spec.shape[1:], generator=generator) * 30.0).to(device).requires_grad_(True)
            for spec in model.inputs]


def raw_forward_backward(graph: torch.nn.Module, model: ImportedModel, batch: int, reps: int,
                         device: torch.device) -> list[float]:
    """Durations of a bare forward+backward of `graph` w.r.t. its inputs (channel sum as the loss)."""
    inputs = bare_inputs(model, batch, device)
    times = []
    for _ in range(reps):
        for x in inputs:
            x.grad = None
        _sync(device)
        start = time.perf_counter()
        out = graph(*inputs)[0]
        out.sum().backward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def part_costs(model: ImportedModel, layer: str, batch: int, reps: int, device: torch.device) -> dict[str, list[float]]:
    """The engine's own pieces, each alone at this batch on every input the layer reads, as a
    run's second step calls them: the jitter (the input the network sees; on the native path
    the previous update already wrote it) and the fused update (the jitter undone on the
    gradient, R_B and R_TV gradients, Adam, projection, and on the native path the next
    step's jittered input). Their sum says how much of an engine step is arithmetic on the
    inputs and how much is the rest of the loop."""
    config = MaximizeConfig(iterations=3)
    settings = torch.ones(batch, device=device)  # κ = γ = 1
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    generators = [torch.Generator().manual_seed(i) for i in range(batch)]
    inputs, grads = [], []
    for spec in model.inputs:
        stride = model.layer(layer).stride.get(spec.name)
        limits = [(int(stride.get("H", 1)), int(stride.get("W", 1))) if stride else (1, 1)] * batch
        item = OptimizedInput(spec, [bool(stride)] * batch, compose(spec, standard_transforms(spec, limits)), config,
                              generators, device)
        item.plan_shifts(config.seed, config.iterations)
        inputs.append(item)
        grads.append(torch.randn_like(item.param.values) if stride else None)
    updater = choose_updater(config, device, inputs, settings, settings)
    updater.kernels.compiled = device.type == "cpu" and not updater.kernels.native
    prepared: list = []

    def jittered() -> None:
        for item, feed in zip(inputs, prepared):
            item.prepared = feed
            item.feed(updater.kernels, 1)

    def updated() -> None:
        updater.step(1, grads, alive)  # the values alternate between the two buffers, as in a run

    pieces = dict(zip(PARTS, (jittered, updated)))
    updated()  # compiles for this batch outside the timing, and writes the native path's next input
    prepared = [item.prepared for item in inputs]
    costs: dict[str, list[float]] = {name: [] for name in PARTS}
    for _ in range(reps + 1):
        for name, piece in pieces.items():
            _sync(device)
            start = time.perf_counter()
            piece()
            _sync(device)
            costs[name].append(time.perf_counter() - start)
    return {name: times[1:] for name, times in costs.items()}


def measure(model: ImportedModel, case: Case, repeats: int, guard: Guard, device: torch.device) -> Timings:
    """Interleaved repetitions: SINGLE one-unit calls, then per batch one call and bare passes at that batch."""
    layers = list(dict.fromkeys(layer for obj in case.samples(max(case.batches))[0] for layer in obj.layers()))
    graph = truncate(model.module, [model.layer(name).name for name in layers]).to(device)
    batches = [b for b in case.batches if b > 1]
    objectives, settings = case.samples(SINGLE)
    jobs = [(o, s) for o in objectives for s in settings]

    def single_calls() -> tuple[float, list[float]]:
        wall, steps = 0.0, []
        for objective, setting in jobs:
            w, s = engine_call(model, [objective], [setting], case.iterations, 1, case.skip, device)
            wall, steps = wall + w, steps + s
        return wall, steps

    def batched_call(batch: int) -> tuple[float, list[float]]:
        objectives, settings = case.samples(batch)
        return engine_call(model, objectives, settings, case.iterations, batch, case.skip, device)

    # warm-up: kernels, allocator and oneDNN primitives for every batch size
    engine_call(model, objectives[:1], settings[:1], case.skip + 2, 1, 0, device)
    for batch in batches:
        batched_call(batch)
    for batch in case.batches:
        raw_forward_backward(graph, model, batch, 2, device)

    timings = Timings()
    for _ in range(repeats):
        for batch in case.batches:
            wall, steps = guard.run(single_calls if batch == 1 else lambda: batched_call(batch))
            timings.calls.setdefault(batch, []).append(wall)
            timings.engine_steps.setdefault(batch, []).extend(steps)
            passes = case.iterations * (SINGLE if batch == 1 else 1)
            wall = guard.run(lambda: timed(lambda: raw_forward_backward(graph, model, batch, passes, device)))
            timings.raw_totals.setdefault(batch, []).append(wall)
            raw = guard.run(lambda: raw_forward_backward(graph, model, batch, case.raw_reps, device))
            timings.raw.setdefault(batch, []).extend(raw)
            timings.step_ratios.setdefault(batch, []).append(statistics.median(steps) / statistics.median(raw))
            parts = guard.run(lambda: part_costs(model, layers[0], batch, max(3, case.raw_reps // 2), device))
            for name, times in parts.items():
                timings.parts.setdefault(batch, {}).setdefault(name, []).extend(times)
    return timings


def profile_evidence(model: ImportedModel, case: Case, batch: int, device: torch.device) -> str:
    """torch.profiler per step: the operators an engine call at `batch` spends more time in than bare passes."""
    objectives, settings = case.samples(batch)
    layers = list(dict.fromkeys(layer for obj in objectives for layer in obj.layers()))
    graph = truncate(model.module, [model.layer(name).name for name in layers]).to(device)
    steps = min(case.iterations, 10)
    return describe_extra(lambda: engine_call(model, objectives, settings, steps, batch, 0, device), steps,
                          lambda: raw_forward_backward(graph, model, batch, steps, device), steps,
                          f"{steps}-step engine call against {steps} bare passes at batch {batch}, per step")


# --------------------------------------------------------------------------- cases


def small_cases(smoke: bool) -> list[Case]:
    iterations, skip, reps = (4, 1, 2) if smoke else (40, 5, 20)
    cases = [Case("two_stream_small", "Channel('conv_fusion', c)", lambda c: Channel("conv_fusion", c), 64,
                  (1, 16) if smoke else (1, 16, 64), iterations, skip, reps)]
    if not smoke:
        cases.insert(0, Case("two_stream_small", "Logit('logits', c)", lambda c: Logit("logits", c), 8,
                             (1, 16, 64), iterations, skip, reps))
    return cases


def large_cases(width: float, size: int) -> list[Case]:
    name = f"vgg16_two_stream w{width:g} {size}px"
    return [Case(name, "Channel('conv5_fusion', c)", lambda c: Channel("conv5_fusion", c), 128, (1, 16, 64), 8, 3, 4, 5)]


def load_large(width: float, size: int, folder: Path) -> ImportedModel:
    path = export_model("vgg16_two_stream", folder / "vgg16_two_stream.onnx", size=size, width=width)
    return import_model(path)


@dataclass(frozen=True)
class Sizes:
    """The large model: a zoo VGG-16 two-stream network at reduced width and input size."""

    width: float = 0.25
    size: int = 112
    large: bool = True


def run(options: Options, sizes: Sizes = Sizes(), command: str = "bench/run_all.py") -> Report:
    """Both models on every device; a missed target's reason is profiled only once it is known to be missed."""
    torch.set_num_threads(options.threads)
    guard = guard_for(options.smoke, options.wait)
    rows: list[Row] = []
    evidence: dict[tuple[str, str, str], Callable[[int], str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        models: list[tuple[ImportedModel, list[Case]]] = [(import_model(SMALL_MODEL), small_cases(options.smoke))]
        if sizes.large and not options.smoke:
            models.append((load_large(sizes.width, sizes.size, Path(folder)),
                           large_cases(sizes.width, sizes.size)))
        for device in options.devices():
            for model, cases in models:
                for case in cases:
                    start = time.perf_counter()
                    rows.append(Row(device.type, case, measure(model, case, options.reps(case.repeats, smoke=1), guard, device)))
                    evidence[(device.type, case.model, case.label)] = (
                        lambda batch, m=model, c=case, d=device: profile_evidence(m, c, batch, d))
                    print(f"measured {device.type} {case.model} {case.label} in {time.perf_counter() - start:.1f} s",
                          flush=True)
        found = verdicts(rows, evidence)
    notes = guard.notes()
    return Report(SECTION, section(rows, notes, command, options.threads), found, notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", "--quick", action="store_true", help="seconds-long smoke run; no RESULTS.md")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repetitions per case")
    parser.add_argument("--width", type=float, default=0.25, help="channel width of the large model")
    parser.add_argument("--size", type=int, default=112, help="input size of the large model")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for other processes to leave the CPU before each repetition")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    retain_freed_memory()  # as `kinetoscope serve` runs the engine
    options = Options(smoke=args.smoke, repeats=args.repeats, wait=args.wait, threads=1 if args.smoke else 2)
    print(machine_line(options.threads), flush=True)
    command = " ".join(["python bench/engine_step.py", *(sys.argv[1:] if argv is None else argv)])
    report = run(options, Sizes(args.width, args.size), command)
    print(report.text)
    print("\n".join(v.line() for v in report.verdicts))
    if not args.smoke and not args.no_write:
        write_section(args.results, SECTION, report.text, options.threads)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
