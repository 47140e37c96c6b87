"""Benchmark of activation recording against a bare onnxruntime forward of the same model over the same clips.

Recording adds to the network's own forward pass: the recorded layers as extra outputs
(which can keep onnxruntime from fusing an op into its producer), the per-clip maximum
over positions, and the accumulators (max, mean, top-k, histogram, per-class maximum).
This script measures what that costs as a throughput ratio (clips/s recording over
clips/s bare, target >= 0.9), for both forward backends, so that `RecordConfig(backend=
"auto")` takes the faster one on this device. Repetitions interleave the sides and
ratios are medians of per-repetition ratios, so a busier machine moves both.

    .venv/bin/python bench/recording.py            # full run; rewrites "## Recording" in bench/RESULTS.md
    .venv/bin/python bench/recording.py --quick    # seconds-long smoke run; writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from benchlib import machine_line, timed, write_section
from quiet import BUDGET, QUIET_CORES, ForeignLoad
from suite import Options, Report, Verdict, at_least

import kinetoscope.model_zoo as zoo
from kinetoscope.model_zoo.export import export_model
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.server.engine.config import RecordConfig
from kinetoscope.server.engine.forward import ort_session
from kinetoscope.server.engine.recorder import Recorder, choose_backend
from kinetoscope.server.importer import ImportedModel, import_model
from kinetoscope.server.importer.ort import with_outputs

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Recording"
TRAINED = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
THREADS = 2
TARGET = at_least(0.9)
"""Recording must keep at least this share of the bare forward's clips/s."""
BACKENDS = ("onnxruntime", "torch")
RETRIES = 20
SUITE_RETRIES = 6
"""Fewer in the full suite, whose other benchmarks also wait for a quiet machine."""
PAUSE_S = 0.1
"""Between sides: onnxruntime's pool threads spin for a while after a run, and on two cores the next
side's threads would compete with them (measured: a 20 % swing decided by which side ran first)."""


@dataclass
class Case:
    name: str
    path: Path
    model: ImportedModel
    layers: list[str]
    clips: dict[str, np.ndarray]
    labels: np.ndarray
    batch: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    effective_batch: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.labels)

    def rate(self, side: str) -> float:
        return self.count / statistics.median(self.seconds[side])

    def ratio(self, side: str) -> float:
        return statistics.median(b / r for b, r in zip(self.seconds["bare"], self.seconds[side]))


class BareForward:
    """The original file, fully optimized, graph outputs only, batched when its batch axis allows."""

    def __init__(self, path: Path, model: ImportedModel, batch: int) -> None:
        graph = onnx.load(path)
        self.names = [spec.name for spec in model.inputs]
        self.batch = batch
        self.session = ort_session(with_outputs(graph, [], dynamic_batch=True))
        probe = {spec.name: np.zeros((batch, *spec.shape[1:]), np.float32) for spec in model.inputs}
        try:
            self.session.run(None, probe)
        except Exception:  # noqa: BLE001 - a graph with a fixed batch runs clip by clip
            self.batch = 1
            self.session = ort_session(graph)

    def __call__(self, clips: dict[str, np.ndarray]) -> None:
        count = len(next(iter(clips.values())))
        for start in range(0, count, self.batch):
            self.session.run(None, {name: clips[name][start : start + self.batch] for name in self.names})


class RecordingLoad:
    """Re-runs a group of repetitions while other processes loaded the CPU during it (quiet.ForeignLoad measures).

    Two threads sharing two cores with another busy process wait a scheduler slice at
    every barrier; such repetitions say nothing about recording and are run again.
    """

    def __init__(self) -> None:
        self.monitor = ForeignLoad()
        self.worst = 0.0
        self.retried = 0

    def quiet(self, run: Callable[[], object], retries: int = RETRIES) -> None:
        """Runs `run` until other processes stay under QUIET_CORES during it (at most `retries` extra times)."""
        for attempt in range(retries + 1):
            began = time.perf_counter()
            mark = self.monitor.start()
            run()
            foreign = self.monitor.stop(mark)
            if foreign is None:
                return
            if foreign <= QUIET_CORES or attempt == retries or BUDGET.left() <= 0:
                self.worst = max(self.worst, foreign)
                return
            self.retried += 1
            time.sleep(1.0)
            BUDGET.spent += time.perf_counter() - began


def measure(case: Case, repeats: int, load: RecordingLoad, retries: int = RETRIES) -> None:
    """Set-up (session or truncated graph, batch probe) is paid once per Record call: it is timed apart from streaming."""
    bare = BareForward(case.path, case.model, case.batch)
    case.effective_batch["bare"] = bare.batch
    configs = {backend: RecordConfig(backend=backend, batch_size=case.batch) for backend in BACKENDS}

    def stream(backend: str) -> float:
        began = time.perf_counter()
        recorder = Recorder(case.model, case.layers, configs[backend])
        case.setup[backend] = time.perf_counter() - began
        case.effective_batch[backend] = recorder.forward.batch
        return timed(lambda: (recorder.add(case.clips, case.labels), recorder.finish()))

    sides: dict[str, Callable[[], float]] = {"bare": lambda: timed(lambda: bare(case.clips))}
    sides.update({backend: (lambda backend=backend: stream(backend)) for backend in BACKENDS})
    for run in sides.values():  # warm-up
        run()
    case.seconds = {side: [] for side in sides}
    for _ in range(repeats):
        times: dict[str, float] = {}
        load.quiet(lambda: times.update({side: paused(run) for side, run in sides.items()}), retries)
        for side, seconds in times.items():
            case.seconds[side].append(seconds)


def paused(run: Callable[[], float]) -> float:
    time.sleep(PAUSE_S)
    return run()


def trained_case(clips: int) -> Case:
    model = import_model(TRAINED, inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])
    rgb, flow, labels = SyntheticActions().batch(clips, seed=0)
    return Case("two_stream_small (rgb 3x32x32 + flow 20x32x32)", TRAINED, model,
                ["rgb/conv3", "flow/conv3", "conv_fusion", "logits"], {"rgb": rgb, "flow": flow}, labels, 32)


def c3d_case(clips: int, folder: Path) -> Case:
    path = export_model("c3d", folder / "c3d.onnx", width=0.25, frames=16, size=64)
    model = import_model(path)
    spec = model.inputs[0]
    rng = np.random.default_rng(0)
    video = rng.normal(0, 40, (clips, *spec.shape[1:])).astype(np.float32)
    return Case("c3d width 0.25 (video 3x16x64x64)", path, model, ["relu3b", "relu5b", "relu7", "logits"],
                {spec.name: video}, rng.integers(0, 487, clips), 8)


def table(cases: list[Case]) -> list[str]:
    """The target holds for the backend `auto` takes on the CPU; the other backend's row is reported beside it."""
    auto = choose_backend("auto", "cpu")
    rows = ["| model | clips | batch | bare ORT clips/s | backend | set-up s | record clips/s | ratio | target ≥ 0.9 |",
            "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for case in cases:
        for backend in BACKENDS:
            ratio = case.ratio(backend)
            status = TARGET.verdict(ratio) if backend == auto else "reported (not `auto`'s choice)"
            rows.append(
                f"| {case.name} | {case.count} | {case.effective_batch[backend]} (bare {case.effective_batch['bare']}) | "
                f"{case.rate('bare'):.0f} | {backend} | {case.setup[backend]:.2f} | {case.rate(backend):.0f} | "
                f"{ratio:.3f} | {status} |"
            )
    return rows


def verdicts(cases: list[Case]) -> list[str]:
    auto = choose_backend("auto", "cpu")
    lines = []
    for case in cases:
        faster, slower = sorted(BACKENDS, key=case.rate, reverse=True)
        margin = case.rate(faster) / case.rate(slower) - 1
        which = f"{faster} faster by {margin:.0%}" if margin >= 0.05 else f"a tie ({faster} ahead by {margin:.0%}, within noise)"
        lines.append(f"- {case.name}: {which}; `auto` on the CPU takes {auto} "
                     f"(ratio {case.ratio(auto):.3f}, {TARGET.verdict(case.ratio(auto))}).")
    if not torch.cuda.is_available():
        lines.append("- On CUDA `auto` takes torch (onnxruntime runs CPU-only here); not measured: this machine has no GPU.")
    return lines


def section(cases: list[Case], repeats: int, command: str, load: RecordingLoad, threads: int = THREADS) -> str:
    body = [
        SECTION,
        "",
        f"`{command}` — {machine_line(threads)}; median of {repeats} interleaved repetitions "
        f"({load.retried} repeated because other processes used more than {QUIET_CORES} cores; the worst kept one "
        f"saw {load.worst:.2f}).",
        "",
        "Bare ORT: the model's own file in onnxruntime, fully optimized, graph outputs only, batch axis made",
        "dynamic. Record: `Recorder.add` + `finish` over the same clips with the layers listed below exposed",
        "(per-clip max over positions, then â, mean, top-5, 64-bin histogram and per-class max); the set-up",
        "(session or truncated graph, batch probe) is paid once per Record call and shown apart; each record",
        "repetition uses a fresh recorder, as a Record call does. Ratio: bare time over record time (a",
        f"throughput ratio). Sides are {PAUSE_S} s apart so that onnxruntime's spinning pool threads of one side",
        "do not compete with the next.",
        "",
        *table(cases),
        "",
        *[f"- layers of {case.name}: {', '.join(case.layers)}" for case in cases],
        *verdicts(cases),
    ]
    return "\n".join(body).rstrip() + "\n"


def run(options: Options, command: str = "bench/run_all.py") -> Report:
    """Smoke: the trained model on 32 clips, once; full: 1024 trained clips and 96 C3D clips, 9 repetitions."""
    torch.set_num_threads(options.threads)
    repeats = options.reps(9, smoke=1)
    load = RecordingLoad()
    with tempfile.TemporaryDirectory(prefix="kinetoscope-bench-") as folder:
        cases = [trained_case(32 if options.smoke else 1024)]
        if not options.smoke:
            cases.append(c3d_case(96, Path(folder)))
        for case in cases:
            measure(case, repeats, load, retries=0 if options.smoke else SUITE_RETRIES)
    found = []
    for case in cases:
        for backend in BACKENDS:
            ratio = case.ratio(backend)
            target = TARGET if backend == choose_backend("auto", "cpu") else None
            reason = why_slower(case, backend) if target and not target.met(ratio) else ""
            found.append(Verdict("4 recording / bare onnxruntime (clips/s)", f"{case.name}, {backend} backend", ratio,
                                 target, reason))
    return Report(SECTION, section(cases, repeats, command, load, options.threads), found)


def why_slower(case: Case, backend: str) -> str:
    """Where a recording pass goes: the recorder's forward (the graph with the layers' per-clip maxima as
    outputs) against the bare forward, and the statistics (â, mean, top-k, histogram, per-class max)."""
    recorder = Recorder(case.model, case.layers, RecordConfig(backend=backend, batch_size=case.batch))
    bare = BareForward(case.path, case.model, case.batch)
    forward = statistics.median(timed(lambda: recorder.forward(case.clips)) for _ in range(3))
    plain = statistics.median(timed(lambda: bare(case.clips)) for _ in range(3))
    whole = statistics.median(
        timed(lambda: (r.add(case.clips, case.labels), r.finish()))
        for r in [Recorder(case.model, case.layers, RecordConfig(backend=backend, batch_size=case.batch)) for _ in range(3)])
    return (f"over {case.count} clips: bare forward {plain * 1e3:.1f} ms; the recorder's forward with the layers' "
            f"per-clip maxima as outputs {forward * 1e3:.1f} ms ({forward / plain:.2f}× bare); the statistics "
            f"{max(0.0, whole - forward) * 1e3:.1f} ms (a whole pass {whole * 1e3:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", "--quick", action="store_true", help="a smoke run; writes nothing")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    options = Options(smoke=args.smoke, repeats=args.repeats, threads=1 if args.smoke else THREADS)
    command = "bench/recording.py" + (" --smoke" if args.smoke else "")
    report = run(options, command)
    print(report.text)
    if not args.smoke:
        write_section(RESULTS, SECTION, report.text, THREADS)
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
