"""Benchmark of the activation-maximization engine against the bare network.

Every optimizer step of `maximize` runs the truncated graph forward and backward, and
around it jitter, the regularizers R_B and R_TV, Adam, the projection onto the B-ball
and some bookkeeping. This script measures what those add, as the ratio of one engine
step to a bare forward+backward of the same truncated graph at the same batch size,
and whether batching units into one call pays off as much for the engine as it does
for the bare network. Ratios are formed within one process run, from medians of
interleaved repetitions, so that a slower or busier machine moves both sides.

    .venv/bin/python bench/engine_step.py            # full run; rewrites "## Engine" in bench/RESULTS.md
    .venv/bin/python bench/engine_step.py --quick    # seconds-long smoke run; writes nothing
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from benchlib import busy_cpu_seconds, machine_line, write_section

import kinetoscope.model_zoo as zoo
from kinetoscope.model_zoo.export import export_model
from kinetoscope.server.engine import Channel, Logit, MaximizeConfig, Objective, Setting, StepReport, maximize
from kinetoscope.server.engine.regularizers import LocalEnergy, RegularizerWeights, TotalVariation, penalty
from kinetoscope.server.engine.transforms import Jitter
from kinetoscope.server.engine.truncate import truncate
from kinetoscope.server.importer import ImportedModel, import_model

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Engine"
SMALL_MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
THREADS = 2
STEP_TARGET = 1.15
"""An engine step may cost at most this many bare forward+backward passes."""
GAIN_TARGET = 0.9
"""Batching must give the engine at least this share of the bare network's own gain."""
BATCH = 16
QUIET_CORES = 0.25
"""CPU (in cores) other processes may use while a repetition runs before it is repeated."""


# --------------------------------------------------------------------------- machine load


class ForeignLoad:
    """CPU used by other processes during a span, in cores (Linux /proc/stat; None elsewhere).

    Two busy cores elsewhere make a 2-thread OpenMP team wait a scheduler slice at every
    barrier, which can slow a small network by 10–100×; timings taken then say nothing
    about the engine, so they are detected and repeated.
    """

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self.hz = os.sysconf("SC_CLK_TCK") if self.available else 100

    def _busy_seconds(self) -> float:
        return busy_cpu_seconds(self.hz)

    def start(self) -> tuple[float, float, float] | None:
        if not self.available:
            return None
        return time.perf_counter(), time.process_time(), self._busy_seconds()

    def stop(self, mark: tuple[float, float, float] | None) -> float | None:
        if mark is None:
            return None
        wall = time.perf_counter() - mark[0]
        own = time.process_time() - mark[1]
        busy = self._busy_seconds() - mark[2]
        return max(0.0, (busy - own) / max(wall, 1e-9))

    def wait_quiet(self, limit: float) -> float | None:
        """Wait (at most `limit` seconds) until other processes leave the CPU; return their last load."""
        if not self.available:
            return None
        deadline = time.perf_counter() + limit
        while True:
            mark = self.start()
            time.sleep(0.5)
            load = self.stop(mark)
            if load is None or load < QUIET_CORES or time.perf_counter() >= deadline:
                return load


@dataclass
class Guard:
    """Runs one repetition of a measurement again while other processes loaded the CPU."""

    monitor: ForeignLoad
    wait: float
    retries: int
    repeated: int = 0
    loads: list[float] = field(default_factory=list)

    def run(self, measure: Callable[[], object]) -> object:
        attempt = 0
        while True:
            if self.wait > 0:
                self.monitor.wait_quiet(self.wait)
            mark = self.monitor.start()
            value = measure()
            load = self.monitor.stop(mark)
            if load is None:
                return value
            if load < QUIET_CORES or attempt == self.retries:
                self.loads.append(load)
                return value
            self.repeated += 1
            attempt += 1


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Case:
    model: str
    label: str
    objectives: list[Objective]
    settings: list[Setting]
    iterations: int
    skip: int
    """Steps left out at the start of every call (allocator and kernel warm-up)."""
    raw_reps: int


@dataclass
class Timings:
    engine_steps: dict[int, list[float]] = field(default_factory=lambda: {1: [], BATCH: []})
    raw: dict[int, list[float]] = field(default_factory=lambda: {1: [], BATCH: []})
    step_ratios: dict[int, list[float]] = field(default_factory=lambda: {1: [], BATCH: []})
    calls_single: list[float] = field(default_factory=list)
    calls_batched: list[float] = field(default_factory=list)
    parts: dict[int, dict[str, list[float]]] = field(default_factory=lambda: {1: {}, BATCH: {}})


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_call(model: ImportedModel, objectives: Sequence[Objective], settings: Sequence[Setting], iterations: int,
                max_batch: int, skip: int, device: torch.device) -> tuple[float, list[float]]:
    """Wall time of one `maximize` call and its step durations (on_step to on_step, first `skip` left out)."""
    marks: list[tuple[int, int, float]] = []

    def on_step(report: StepReport) -> None:
        marks.append((report.done, report.step, time.perf_counter()))

    config = MaximizeConfig(iterations=iterations, max_batch=max_batch)
    start = time.perf_counter()
    maximize(model, objectives, settings, config, on_step=on_step, device=device)
    wall = time.perf_counter() - start
    steps = [b[2] - a[2] for a, b in zip(marks, marks[1:]) if a[0] == b[0] and b[1] > skip]
    return wall, steps


def raw_forward_backward(graph: torch.nn.Module, model: ImportedModel, batch: int, reps: int,
                         device: torch.device) -> list[float]:
    """Durations of a bare forward+backward of `graph` w.r.t. its inputs (channel sum as the loss)."""
    generator = torch.Generator().manual_seed(0)
    inputs = [
        (torch.randn(batch, *spec.shape[1:], generator=generator) * 30.0).to(device).requires_grad_(True)
        for spec in model.inputs
    ]
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


PARTS = ("jitter", "regularizers", "Adam", "projection")


def part_costs(model: ImportedModel, layer: str, batch: int, reps: int, device: torch.device) -> dict[str, list[float]]:
    """The engine's own pieces, each alone at this batch on every input the layer reads: jitter
    forward and backward (shifts up to the layer's stride), R_B + R_TV forward and backward,
    one Adam step, the projections. Built as `maximize` builds them (one backward and one
    optimizer for all inputs), so their sum says how much of an engine step is arithmetic on
    the inputs and how much is the rest of the loop."""
    config = MaximizeConfig()
    generators = [torch.Generator().manual_seed(i) for i in range(batch)]
    kappa = torch.ones(batch, device=device)
    gamma = torch.ones(batch, device=device)
    inputs = []
    for spec in model.inputs:
        stride = model.layer(layer).stride.get(spec.name)
        if not stride:
            continue
        weights = RegularizerWeights.for_input(spec, alpha=config.alpha, bound=config.bound)
        jitter = Jitter(spec, [(int(stride.get("H", 1)), int(stride.get("W", 1)))] * batch)
        x = (torch.randn(batch, *spec.shape[1:]) * (0.3 * weights.bound)).to(device).requires_grad_(True)
        inputs.append((x, weights, jitter, LocalEnergy(spec, weights), TotalVariation(spec, weights)))
    optimizer = torch.optim.Adam([{"params": [x], "lr": config.learning_rate * w.bound} for x, w, *_ in inputs])
    upstream = [torch.ones_like(x) for x, *_ in inputs]

    def jittered() -> None:
        torch.autograd.backward([j(x, j.draw(generators).to(device)) for x, _, j, _, _ in inputs], upstream)

    def regularized() -> None:
        sum(penalty(x, [energy, tv.term(kappa, gamma)]) for x, _, _, energy, tv in inputs).sum().backward()

    def stepped() -> None:
        for x, *_ in inputs:
            x.grad = torch.ones_like(x)
        optimizer.step()

    def projected() -> None:
        for x, _, _, energy, _ in inputs:
            energy.project(x.data)

    pieces = dict(zip(PARTS, (jittered, regularized, stepped, projected)))
    costs: dict[str, list[float]] = {name: [] for name in PARTS}
    for _ in range(reps):
        for name, piece in pieces.items():
            for x, *_ in inputs:
                x.grad = None  # as after the loop's zero_grad: backward hands its gradient over
            _sync(device)
            start = time.perf_counter()
            piece()
            _sync(device)
            costs[name].append(time.perf_counter() - start)
    return {name: times[1:] for name, times in costs.items()}


def measure(model: ImportedModel, case: Case, repeats: int, guard: Guard, device: torch.device) -> Timings:
    """Interleaved repetitions: 16 one-unit calls, one 16-unit call, bare passes at batch 1 and 16."""
    layers = list(dict.fromkeys(layer for obj in case.objectives for layer in obj.layers()))
    graph = truncate(model.module, [model.layer(name).name for name in layers]).to(device)
    jobs = [(o, s) for o in case.objectives for s in case.settings]
    assert len(jobs) == BATCH, f"{case.label}: {len(jobs)} samples, expected {BATCH}"

    def single_calls() -> tuple[float, list[float]]:
        wall, steps = 0.0, []
        for objective, setting in jobs:
            w, s = engine_call(model, [objective], [setting], case.iterations, 1, case.skip, device)
            wall, steps = wall + w, steps + s
        return wall, steps

    def batched_call() -> tuple[float, list[float]]:
        return engine_call(model, case.objectives, case.settings, case.iterations, BATCH, case.skip, device)

    # warm-up: kernels, allocator and oneDNN primitives for both batch sizes
    engine_call(model, case.objectives[:1], case.settings[:1], case.skip + 2, 1, 0, device)
    batched_call()
    for batch in (1, BATCH):
        raw_forward_backward(graph, model, batch, 3, device)

    timings = Timings()
    for _ in range(repeats):
        wall, steps = guard.run(single_calls)
        timings.calls_single.append(wall)
        timings.engine_steps[1].extend(steps)
        raw_one = guard.run(lambda: raw_forward_backward(graph, model, 1, case.raw_reps, device))
        timings.raw[1].extend(raw_one)
        timings.step_ratios[1].append(statistics.median(steps) / statistics.median(raw_one))

        wall, steps = guard.run(batched_call)
        timings.calls_batched.append(wall)
        timings.engine_steps[BATCH].extend(steps)
        raw_many = guard.run(lambda: raw_forward_backward(graph, model, BATCH, case.raw_reps, device))
        timings.raw[BATCH].extend(raw_many)
        timings.step_ratios[BATCH].append(statistics.median(steps) / statistics.median(raw_many))

        for batch in (1, BATCH):
            parts = guard.run(lambda: part_costs(model, layers[0], batch, max(3, case.raw_reps // 2), device))
            for name, times in parts.items():
                timings.parts[batch].setdefault(name, []).extend(times)
    return timings


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    device: str
    case: Case
    timings: Timings

    def step_ms(self, batch: int) -> float:
        return statistics.median(self.timings.engine_steps[batch]) * 1e3

    def raw_ms(self, batch: int) -> float:
        return statistics.median(self.timings.raw[batch]) * 1e3

    def step_ratio(self, batch: int) -> float:
        return statistics.median(self.timings.step_ratios[batch])

    def engine_gain(self) -> float:
        return statistics.median(self.timings.calls_single) / statistics.median(self.timings.calls_batched)

    def raw_gain(self) -> float:
        return BATCH * self.raw_ms(1) / self.raw_ms(BATCH)

    def unit_steps_per_second(self, calls: list[float]) -> float:
        return BATCH * self.case.iterations / statistics.median(calls)

    def part_ms(self, batch: int, name: str) -> float:
        return statistics.median(self.timings.parts[batch][name]) * 1e3


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def step_table(rows: list[Row]) -> list[str]:
    lines = [
        "| device | model | objective | batch | engine step (ms) | bare fwd+bwd (ms) | ratio | target |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for batch in (1, BATCH):
            ratio = row.step_ratio(batch)
            lines.append(
                f"| {row.device} | {row.case.model} | {row.case.label} | {batch} | {row.step_ms(batch):.2f} | "
                f"{row.raw_ms(batch):.2f} | {ratio:.2f} | ≤ {STEP_TARGET:.2f} {_verdict(ratio <= STEP_TARGET)} |"
            )
    return lines


def gain_table(rows: list[Row]) -> list[str]:
    lines = [
        f"| device | model | objective | engine, 1 unit/call (unit-steps/s) | engine, {BATCH} units/call (unit-steps/s) "
        "| engine gain | bare gain | engine/bare | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        share = row.engine_gain() / row.raw_gain()
        lines.append(
            f"| {row.device} | {row.case.model} | {row.case.label} | "
            f"{row.unit_steps_per_second(row.timings.calls_single):.0f} | "
            f"{row.unit_steps_per_second(row.timings.calls_batched):.0f} | {row.engine_gain():.2f}× | "
            f"{row.raw_gain():.2f}× | {share:.2f} | ≥ {GAIN_TARGET:.2f} {_verdict(share >= GAIN_TARGET)} |"
        )
    return lines


def parts_table(rows: list[Row]) -> list[str]:
    lines = [
        "| device | model | objective | batch | engine − bare (ms) | "
        + " | ".join(f"{name} (ms)" for name in PARTS) + " | rest of the loop (ms) |",
        "|---|---|---|---:|---:|" + "---:|" * len(PARTS) + "---:|",
    ]
    for row in rows:
        for batch in (1, BATCH):
            extra = row.step_ms(batch) - row.raw_ms(batch)
            parts = [row.part_ms(batch, name) for name in PARTS]
            lines.append(
                f"| {row.device} | {row.case.model} | {row.case.label} | {batch} | {extra:.2f} | "
                + " | ".join(f"{value:.2f}" for value in parts) + f" | {extra - sum(parts):.2f} |"
            )
    return lines


def ratio_lines(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        name = f"{row.device} {row.case.model} {row.case.label}"
        for batch in (1, BATCH):
            ratio = row.step_ratio(batch)
            lines.append(f"ratio step {name} batch {batch}: {ratio:.3f} "
                         f"(target <= {STEP_TARGET:.2f}: {_verdict(ratio <= STEP_TARGET)})")
        share = row.engine_gain() / row.raw_gain()
        lines.append(f"ratio batching {name}: {share:.3f} (engine gain {row.engine_gain():.2f}x, "
                     f"bare gain {row.raw_gain():.2f}x; target >= {GAIN_TARGET:.2f}: {_verdict(share >= GAIN_TARGET)})")
    return lines


def section(rows: list[Row], notes: list[str], command: str) -> str:
    body = [
        SECTION,
        "",
        f"`{command}` — {machine_line(THREADS)}.",
        "",
        "Engine step: the interval between two consecutive `on_step` calls of `maximize` (jitter, forward,",
        "objective, regularizers, backward, Adam, projection, bookkeeping), median over all steps after",
        "the first few of each call. Bare fwd+bwd: the same truncated graph (`truncate(model.module, [layer])`)",
        "at the same batch, inputs with `requires_grad`, `out.sum().backward()`. Ratios are medians of",
        "per-repetition ratios; repetitions interleave the two sides.",
        "",
        *step_table(rows),
        "",
        f"Batching: {BATCH} one-unit `maximize` calls against one call holding all {BATCH} units, whole",
        "calls (set-up and the final forward included); the bare gain is 16 batch-1 passes against one",
        "batch-16 pass.",
        "",
        *gain_table(rows),
        "",
        "Where the extra time of a step goes: the engine's pieces timed alone on all inputs at",
        "that batch (jitter and regularizers forward and backward, one Adam step, one",
        "projection); the rest is the loop itself (objective, gradient clean-up, bookkeeping,",
        "the sum of the gradients of the network and the regularizers) and what the pieces",
        "cost together beyond their sum.",
        "",
        *parts_table(rows),
        "",
        *notes,
    ]
    return "\n".join(body).rstrip() + "\n"


# --------------------------------------------------------------------------- cases


def small_cases(quick: bool) -> list[Case]:
    iterations, skip, reps = (8, 2, 5) if quick else (40, 5, 20)
    cases = [
        Case("two_stream_small", "Channel('conv_fusion', c)", [Channel("conv_fusion", c) for c in range(BATCH)],
             [Setting()], iterations, skip, reps),
    ]
    if not quick:
        cases.insert(0, Case("two_stream_small", "Logit('logits', c)", [Logit("logits", c) for c in range(BATCH // 2)],
                             [Setting(1.0, 0.0), Setting(1.0, 1.0)], iterations, skip, reps))
    return cases


def large_cases(width: float, size: int) -> list[Case]:
    name = f"vgg16_two_stream w{width:g} {size}px"
    return [Case(name, "Channel('conv5_fusion', c)", [Channel("conv5_fusion", c) for c in range(BATCH)],
                 [Setting()], 10, 3, 6)]


def load_large(width: float, size: int, folder: Path) -> ImportedModel:
    path = export_model("vgg16_two_stream", folder / "vgg16_two_stream.onnx", size=size, width=width)
    return import_model(path)


def devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run: small model, few steps, no RESULTS.md")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repetitions per case (default 5, quick 2)")
    parser.add_argument("--width", type=float, default=0.25, help="channel width of the large model")
    parser.add_argument("--size", type=int, default=112, help="input size of the large model")
    parser.add_argument("--wait", type=float, default=None,
                        help="seconds to wait for other processes to leave the CPU before each repetition "
                             "(default 60, quick 0)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(THREADS)
    repeats = args.repeats or (2 if args.quick else 5)
    wait = args.wait if args.wait is not None else (0.0 if args.quick else 60.0)
    guard = Guard(ForeignLoad(), wait=wait, retries=0 if args.quick else 3)
    print(machine_line(THREADS), flush=True)

    rows: list[Row] = []
    small = import_model(SMALL_MODEL)
    with tempfile.TemporaryDirectory() as folder:
        models: list[tuple[ImportedModel, list[Case]]] = [(small, small_cases(args.quick))]
        if not args.quick:
            models.append((load_large(args.width, args.size, Path(folder)), large_cases(args.width, args.size)))
        for device in devices():
            for model, cases in models:
                for case in cases:
                    start = time.perf_counter()
                    timings = measure(model, case, repeats, guard, device)
                    rows.append(Row(device.type, case, timings))
                    print(f"measured {device.type} {case.model} {case.label} in {time.perf_counter() - start:.1f} s",
                          flush=True)

    notes = []
    if guard.loads:
        notes.append(f"Other processes used at most {max(guard.loads):.2f} cores (median {statistics.median(guard.loads):.2f})"
                     f" during the kept repetitions; {guard.repeated} repetition(s) were run again because they"
                     f" used more than {QUIET_CORES} cores.")
    if guard.loads and max(guard.loads) >= QUIET_CORES:
        notes.append("At least one kept repetition still ran beside busy processes after three tries; "
                     "its figures may be slower than the engine alone.")
    print()
    print("\n".join(step_table(rows)))
    print()
    print("\n".join(gain_table(rows)))
    print()
    print("\n".join(parts_table(rows)))
    print()
    print("\n".join(ratio_lines(rows)))
    for note in notes:
        print(note)
    if not args.quick and not args.no_write:
        command = " ".join(["python bench/engine_step.py", *(sys.argv[1:] if argv is None else argv)])
        write_section(args.results, SECTION, section(rows, notes, command), THREADS)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
