"""Every benchmark side by side in one process run; rewrites bench/RESULTS.md as a whole.

    .venv/bin/python bench/run_all.py            # full run (11-14 minutes on 2 cores); rewrites bench/RESULTS.md
    .venv/bin/python bench/run_all.py --smoke    # seconds: tiny sizes, one repetition; writes a temporary file

One process, one machine state and one set of library versions for every ratio: the
engine against a bare forward+backward and its batching gain (1, 2), the imported graph
against the native torch model (3), recording against onnxruntime (4), gRPC against
in-process (5), import against an onnxruntime session (6), Lucent as a peer (7) and the CLI's
start-up against the floor of its stack (8), and the steps the Fourier parameterization needs
against pixels' (9).
Each ratio is a median of interleaved repetitions; each missed target is listed with its
figure and the profile that explains it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import cpu_model  # noqa: E402
from quiet import BUDGET  # noqa: E402
from suite import Options, Report, Verdict  # noqa: E402

from kinetoscope.server.allocator import retain_freed_memory  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BENCHMARKS = ("engine_step", "folded_native", "recording", "grpc_loopback", "import_time", "lucent_peer", "startup",
              "parameterization", "jobs")
PACKAGES = ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "onnx2torch", "grpcio", "numpy", "torch-lucent", "kornia")


def versions() -> str:
    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join([f"Python {sys.version.split()[0]}", *found])


def machine(options: Options) -> str:
    import torch  # noqa: PLC0415

    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return f"{cpu_model()}, {os.cpu_count()} cores, {gpu}; torch on {options.threads} thread{'' if options.threads == 1 else 's'}"


def run_one(name: str, options: Options, command: str) -> Report:
    module = importlib.import_module(name)
    runner: Callable[..., Report] = module.run
    return runner(options, command=command)


def failed(name: str, error: BaseException) -> Report:
    text = f"## {name}\n\nFailed: `{type(error).__name__}: {error}`\n"
    return Report(f"## {name}", text, [], [f"{name} failed: {type(error).__name__}: {error}"])


def summary(verdicts: list[Verdict]) -> list[str]:
    lines = ["| # | comparison | case | figure | target | status |", "|---|---|---|---:|---|---|"]
    for v in verdicts:
        number, _, what = v.benchmark.partition(" ")
        lines.append(f"| {number} | {what} | {v.case} | {v.figure:.3f}{v.unit} | {v.target or '—'} | {v.status()} |")
    return lines


def missed(verdicts: list[Verdict]) -> list[str]:
    lines = [f"- **{v.benchmark}**, {v.case}: {v.figure:.3f} (target {v.target}). {v.reason}".rstrip()
             for v in verdicts if v.met is False]
    return lines or ["None."]


def document(reports: list[Report], options: Options, command: str, seconds: float) -> str:
    verdicts = [v for r in reports for v in r.verdicts]
    notes = [n for r in reports for n in r.notes if "skipped" in n or "failed" in n]
    if BUDGET.seconds and BUDGET.left() <= 0:
        notes.append(f"Other processes kept the CPU busy: the {BUDGET.seconds:.0f} s budget for waiting and repeating "
                     "ran out, and later repetitions were kept as they came (each section notes the load it saw).")
    body = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {datetime.date.today().isoformat()} in {seconds / 60:.1f} min, every benchmark in one process.",
        "",
        f"Machine: {machine(options)}.",
        "",
        f"Versions: {versions()}.",
        "",
        "## Summary",
        "",
        "Ratios are medians of interleaved repetitions (see each section for what each side runs).",
        "",
        *summary(verdicts),
        "",
        *notes,
        "",
        "## Missed targets",
        "",
        *missed(verdicts),
        "",
        *[r.text.rstrip() + "\n" for r in reports],
    ]
    return "\n".join(body).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="seconds-long run on tiny sizes; writes a temporary file")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per case (default: each benchmark's own)")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for other processes to leave the CPU before each repetition")
    parser.add_argument("--wait-budget", type=float, default=600.0,
                        help="seconds the whole run may spend waiting for quiet and repeating disturbed repetitions")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (1 keeps a busy shared machine from stalling a 2-thread team at every barrier)")
    parser.add_argument("--no-gpu", action="store_true", help="CPU figures only, even with a GPU present")
    parser.add_argument("--results", type=Path, default=None,
                        help="where to write (default bench/RESULTS.md; a temporary file with --smoke)")
    args = parser.parse_args(argv)
    retain_freed_memory()  # as `kinetoscope serve` runs the engine
    # A smoke run checks code paths only: one thread keeps it from stalling on a busy machine.
    options = Options(smoke=args.smoke, repeats=args.repeats, wait=0.0 if args.smoke else args.wait,
                      threads=1 if args.smoke else args.threads, gpu=not args.no_gpu)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    command = " ".join(["bench/run_all.py", *(sys.argv[1:] if argv is None else argv)])
    BUDGET.seconds = 0.0 if args.smoke else args.wait_budget
    began = time.perf_counter()
    reports, errors = [], 0
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            report = run_one(name, options, command)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            traceback.print_exc()
            report, errors = failed(name, error), errors + 1
        reports.append(report)
        for verdict in report.verdicts:
            print(verdict.line(), flush=True)
        for note in report.notes:
            print(note, flush=True)
        print(f"== {name} done in {time.perf_counter() - start:.1f} s", flush=True)
    path = args.results
    if path is None:
        path = Path(tempfile.mkstemp(prefix="kinetoscope-bench-", suffix=".md")[1]) if args.smoke else RESULTS
    path.write_text(document(reports, options, command, time.perf_counter() - began))
    print(f"wrote {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
