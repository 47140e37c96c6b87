"""`kinetoscope atlas MODEL [--recording R] [--results DIR | --job ID] [--analysis FILE.json] [--clips FILE.npz] --out DIR`.

Finds every `result.npz` under --results (a `maximize --out` folder or a sweep folder;
a sweep's per-batch `units-*.npz` are left out, its merged `result.npz` per layer
count), asks the server for the model's catalog and the recording, and writes the site.
With --job, the stored job's finished tasks are first fetched into the sweep layout
(as `kinetoscope jobs results` writes it: into --results when given, else a scratch
folder), and the results of MODEL among them make the atlas.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.npz"


def add_atlas_arguments(parser: argparse.ArgumentParser) -> None:
    """The `atlas` command's arguments (the global --server/--store/--token come from the caller)."""
    parser.add_argument("model", help="model id or name")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"folder searched recursively for {RESULT_FILE} files (default out); with --job, the "
                             "folder the job's results are fetched into (default: a scratch folder)")
    parser.add_argument("--job", default="", help="a stored job's id (`kinetoscope jobs list`): build from its results")
    parser.add_argument("--recording", default="", help="recording id or name: recorded â, top clips, per-class maxima")
    parser.add_argument("--analysis", type=Path, default=None,
                        help="per-unit measures as a JSON document {\"layers\": {name: [{\"channel\": ..}, ..]}}")
    parser.add_argument("--clips", type=Path, default=None,
                        help="the FILE.npz the recording was made from, for top-clip thumbnails")
    parser.add_argument("--evolution", nargs="+", type=Path, metavar="DIR", default=None,
                        help="checkpoints' results (a sweep folder over them, or one folder per checkpoint in "
                             "training order): curves of change and temporal variation on the model page")
    parser.add_argument("--out", type=Path, required=True, help="folder for the site (index.html and the rest)")
    parser.add_argument("--json", action="store_true")


def find_results(folder: Path) -> list[Path]:
    """Every result file under `folder`, in path order; the folder itself may be one file."""
    if folder.is_file():
        return [folder]
    return sorted(folder.rglob(RESULT_FILE))


def run_atlas(args: argparse.Namespace, client: Any) -> int:
    """Writes the atlas for `args.model` with `client` (a connected `Client`); user mistakes raise UserError."""
    if not getattr(args, "job", ""):
        if args.results is None:
            args.results = Path("out")
        return _write(args, client, find_results(args.results) if args.results.exists() else [])
    if args.results is not None:
        return _write(args, client, fetch_job_results(client, args.job, args.model, args.results))
    with tempfile.TemporaryDirectory(prefix="kinetoscope-job-") as scratch:
        args.results = Path(scratch)
        return _write(args, client, fetch_job_results(client, args.job, args.model, args.results), kept=False)


def fetch_job_results(client: Any, job: str, model: str, folder: Path) -> list[Path]:
    """The job's finished tasks written into `folder` in the sweep layout; the merged result files of `model`."""
    from ..commands import UserError, _check_out_folder  # noqa: PLC0415
    from ..sweep import MANIFEST, SweepError, write_job_results  # noqa: PLC0415

    _check_out_folder(folder)
    model_id = client.get_model(model)[0].id
    info, _ = client.get_job(job)  # an unknown job is NOT_FOUND, said in the server's words
    if model_id not in info.models:
        raise UserError(f"job {job} maximized units of model(s) {', '.join(info.models)}, not {model} ({model_id}); "
                        f"build the atlas of one of those")
    try:
        summary = write_job_results(client, job, folder)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    folders = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("models", {})
    mine = {name for name, known in folders.items() if known == model_id}
    paths = sorted(p for p in summary.results if p.relative_to(folder).parts[0] in mine)
    if not paths:
        raise UserError(f"job {job} has no finished task of {model} yet ({info.state.lower()}, {info.done} of "
                        f"{info.total} tasks done); `kinetoscope jobs watch {job}` waits for it")
    return paths


def _write(args: argparse.Namespace, client: Any, paths: list[Path], kept: bool = True) -> int:
    """The site from result files `paths` (`kept`: they stay on disk, so the summary lists them)."""
    from ..commands import UserError, read_npz  # noqa: PLC0415
    from ..render.result import ResultError, load_result  # noqa: PLC0415
    from .writer import write_atlas  # noqa: PLC0415

    if not args.results.exists():
        raise UserError(f"--results {args.results} does not exist; give the folder `kinetoscope maximize --out` "
                        "or `kinetoscope sweep` wrote")
    if not paths:
        raise UserError(f"no {RESULT_FILE} under {args.results}; run `kinetoscope maximize MODEL ... --out "
                        f"{args.results}` first")
    blocking = next((p for p in (args.out, *args.out.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write into {args.out}: {blocking} is a file; choose another folder with --out")
    if args.out.resolve() in [p.parent.resolve() for p in paths]:
        raise UserError(f"--out {args.out} holds a result file; choose a folder of its own for the site")
    analysis = _read_analysis(args.analysis, UserError) if args.analysis is not None else None
    clips = None
    if args.clips is not None:
        if not args.recording:
            raise UserError("--clips shows a recording's top clips: give --recording too")
        clips = {name: array for name, array in read_npz(args.clips).items() if name not in ("labels", "ids")}
    try:
        results = [load_result(path) for path in paths]
    except ResultError as exc:
        raise UserError(str(exc)) from None
    evolution = None
    if getattr(args, "evolution", None):
        from .evolution import checkpoint_evolution, load_checkpoints  # noqa: PLC0415

        try:
            evolution = checkpoint_evolution(load_checkpoints(args.evolution))
        except (ValueError, ResultError) as exc:  # EvolutionError, or arrays that do not line up
            raise UserError(f"--evolution: {exc}") from None
    info, layers = client.get_model(args.model)
    recording = client.get_recording(args.recording) if args.recording else None
    if analysis is None and recording is not None and recording.info.clips_kept:
        layers_with_results = sorted({t.layer for r in results for u in range(r.n_units) if (t := r.target(u))})
        analysis = client.analyze(args.model, args.recording, layers_with_results)
    try:
        index = write_atlas(args.out, info, layers, results, recording, analysis, clips=clips, evolution=evolution)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    pages = sum(1 for _ in args.out.rglob("*.html"))
    document = {"index": str(index), "results": [str(p) for p in paths] if kept else [], "pages": pages}
    if getattr(args, "job", ""):
        document["job"] = args.job
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        source = f" of job {args.job}" if getattr(args, "job", "") else ""
        print(f"atlas: {index} ({pages} pages from {len(paths)} result file(s){source})")
    return 0


def _read_analysis(path: Path, error: type[Exception]) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"--analysis {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"--analysis {path} is not a JSON document: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("layers", {}), dict):
        raise error(f"--analysis {path} must be a JSON object whose 'layers' maps layer names to lists of units")
    return document


__all__ = ["add_atlas_arguments", "fetch_job_results", "find_results", "run_atlas"]
