"""Benchmark of the imported, BatchNorm-folded graph against the native torch zoo model it was exported from.

Import turns an ONNX file into a torch.fx graph (onnx2torch plus our converters) with
every BatchNorm folded into its convolution. Folding removes whole layers, so the
imported graph should never be slower than the eval-mode torch module it came from;
if it is, conversion added cost (explicit pads, layout shuffles, wrapper modules) that
the engine pays at every step. Forward and forward+backward (w.r.t. the inputs, as
activation maximization needs, weights frozen on both sides) are timed at the same
batch, interleaved, ratio = imported / native (target ≤ 1.0).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from benchlib import ZooModel, machine_line
from profiling import describe
from quiet import Guard, guard_for
from suite import Options, Report, Verdict, at_most

from kinetoscope.model_zoo.architectures import ARCHITECTURES
from kinetoscope.server.importer import import_model

SECTION = "## Folded graph vs native torch"
TARGET = at_most(1.0)
PASSES = ("forward", "forward+backward")


@dataclass(frozen=True)
class Model(ZooModel):
    """A zoo architecture at a reduced width and input size, built as `export_model` builds it (same seed)."""

    batch: int = 1

    @property
    def label(self) -> str:
        return f"{super().label}, batch {self.batch}"


@dataclass
class Result:
    model: Model
    folded: int
    remaining: int
    max_abs_diff: float
    native: dict[str, list[float]] = field(default_factory=dict)
    imported: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def ms(self, side: dict[str, list[float]], kind: str) -> float:
        return statistics.median(side[kind]) * 1e3

    def ratio(self, kind: str) -> float:
        return statistics.median(self.ratios[kind])


def models(smoke: bool) -> list[Model]:
    if smoke:
        return [Model("r2plus1d_18", 0.125, 4, 32, 2)]
    return [Model("r2plus1d_18", 0.25, 8, 56, 4), Model("bn_inception_tsn", 0.25, 2, 64, 4),
            Model("resnet50_st", 0.25, 2, 64, 4)]


def first(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out  # type: ignore[index,return-value]


def frozen(module: torch.nn.Module) -> torch.nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


def timed_passes(module: torch.nn.Module, inputs: Sequence[torch.Tensor], kind: str, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        for x in inputs:
            x.grad = None
        start = time.perf_counter()
        if kind == "forward":
            with torch.no_grad():
                module(*inputs)
        else:
            first(module(*inputs)).sum().backward()
        times.append(time.perf_counter() - start)
    return times


def measure(model: Model, folder: Path, repeats: int, reps: int, guard: Guard) -> Result:
    info = ARCHITECTURES[model.name]
    path = model.export(folder)
    torch.manual_seed(0)
    native = frozen(info.build(info.num_classes, model.frames, model.size, model.width))
    imported_model = import_model(path)
    imported = frozen(imported_model.module)
    generator = torch.Generator().manual_seed(0)
    shapes = info.input_shapes(model.frames, model.size)
    inputs = [(torch.randn(model.batch, *shapes[n], generator=generator) * 30.0).requires_grad_(True)
              for n in info.input_names]
    with torch.no_grad():
        diff = float((first(native(*inputs)) - first(imported(*inputs))).abs().max())
    result = Result(model, imported_model.bn_folded, imported_model.bn_remaining, diff)
    for kind in PASSES:  # warm-up
        timed_passes(native, inputs, kind, 2)
        timed_passes(imported, inputs, kind, 2)
    for _ in range(repeats):
        for kind in PASSES:
            a = guard.run(lambda: timed_passes(native, inputs, kind, reps))
            b = guard.run(lambda: timed_passes(imported, inputs, kind, reps))
            result.native.setdefault(kind, []).extend(a)
            result.imported.setdefault(kind, []).extend(b)
            result.ratios.setdefault(kind, []).append(statistics.median(b) / statistics.median(a))
    for kind in PASSES:
        if not TARGET.met(result.ratio(kind)):
            result.reasons[kind] = evidence(native, imported, inputs, kind)
    return result


def evidence(native: torch.nn.Module, imported: torch.nn.Module, inputs: Sequence[torch.Tensor], kind: str) -> str:
    runs: dict[str, Callable[[], object]] = {
        "native": lambda: timed_passes(native, inputs, kind, 3),
        "imported": lambda: timed_passes(imported, inputs, kind, 3),
    }
    return " ".join(describe(run, f"3 {kind} passes, {side}") + "." for side, run in runs.items())


def table(results: list[Result]) -> list[str]:
    lines = ["| model | BN folded (left) | max abs diff | pass | native torch (ms) | imported, folded (ms) | ratio | target |",
             "|---|---:|---:|---|---:|---:|---:|---|"]
    for r in results:
        for kind in PASSES:
            ratio = r.ratio(kind)
            lines.append(f"| {r.model.label} | {r.folded} ({r.remaining}) | {r.max_abs_diff:.1e} | {kind} | "
                         f"{r.ms(r.native, kind):.2f} | {r.ms(r.imported, kind):.2f} | {ratio:.3f} | "
                         f"{TARGET} {TARGET.verdict(ratio)} |")
    return lines


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    torch.set_num_threads(options.threads)
    guard = guard_for(options.smoke, options.wait)
    repeats, reps = options.reps(7, smoke=1), (2 if options.smoke else 5)
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-") as folder:
        results = [measure(model, Path(folder), repeats, reps, guard) for model in models(options.smoke)]
    found = [Verdict(f"3 imported folded graph / native torch ({kind})", r.model.label, r.ratio(kind), TARGET,
                     r.reasons.get(kind, "")) for r in results for kind in PASSES]
    text = "\n".join([
        SECTION,
        "",
        f"`{command}` — {machine_line(options.threads)}; median of {repeats} interleaved repetitions of {reps} passes.",
        "",
        "Native: the zoo architecture in torch, eval mode, built with the seed `export_model` uses. Imported:",
        "`import_model` of its ONNX export (BatchNorm folded, converted to torch.fx), the full graph. Both",
        "with weights frozen; forward under `no_grad`, forward+backward w.r.t. the inputs (`out.sum()`),",
        "the same random inputs (σ = 30). Ratio: imported time over native time.",
        "",
        *table(results),
        "",
        *guard.notes(),
    ]).rstrip() + "\n"
    return Report(SECTION, text, found, guard.notes())
