"""The `kinetoscope` command line.

Every command talks gRPC: to `--server HOST:PORT` when given, otherwise to an embedded
server on the local store (`--store`, `$KINETOSCOPE_HOME`, or ~/.cache/kinetoscope).
`--json` prints exactly one JSON document on stdout; progress and messages go to stderr.

What a user sees: an error they can cause is one line, `kinetoscope CMD: what to do`,
and a non-zero exit; third-party log lines and warnings stay off the terminal. The
global `--debug` shows all of it, tracebacks included.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from kinetoscope.server.serve_options import ServeOptions, add_serve_arguments, add_store_argument, add_token_argument

_LOGGER = logging.getLogger(__name__)

QUIET_ENVIRONMENT = {
    "GRPC_VERBOSITY": "NONE",  # gRPC core's own log lines (chttp2 goaways, fork notices)
    "GRPC_TRACE": "",
    "TORCH_CPP_LOG_LEVEL": "ERROR",
    "PYTHONWARNINGS": "ignore",  # inherited by the import worker processes
}
"""Set (unless the user set them) before grpc or torch is first imported, when --debug is not given."""


def add_global_arguments(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--server, --store, --token, --debug; after a command they only override what was given before it."""
    quiet = {"default": argparse.SUPPRESS} if after_command else {}
    parser.add_argument("--server", metavar="HOST:PORT", **{
        "default": os.environ.get("KINETOSCOPE_SERVER"),
        "help": "a running `kinetoscope serve` (default $KINETOSCOPE_SERVER; without it an embedded server "
                "runs in this process on the local store)", **quiet})
    add_store_argument(parser, **quiet)
    add_token_argument(parser, help="bearer token for the server (default $KINETOSCOPE_TOKEN)", **quiet)
    parser.add_argument("--debug", action="store_true", help="show tracebacks, library warnings and logs", **quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinetoscope", description="See what video ConvNets have learned.")
    add_global_arguments(parser, after_command=False)
    common = argparse.ArgumentParser(add_help=False)
    add_global_arguments(common, after_command=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=kwargs.pop("description", help), parents=[common], **kwargs)

    serve = commands.add_parser("serve", help="run the gRPC server for other tools and headless jobs",
                                description="Serve kinetoscope.v1, grpc.health.v1 and server reflection over gRPC "
                                            "until SIGINT/SIGTERM. Prints `kinetoscope serving on HOST:PORT` once "
                                            "it listens.")
    add_serve_arguments(serve, global_store_and_token=True)
    serve.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="server log at DEBUG, with library warnings and gRPC's own log")

    imp = command("import", "import an ONNX model: check, fold BN, convert, verify, catalog")
    imp.add_argument("model", type=Path, help="MODEL.onnx (external-data files beside it are sent along)")
    imp.add_argument("--name", help="a name to refer to the model by (default: the file's stem)")
    imp.add_argument("--input", action="append", default=[], metavar="NAME=1x3x224x224[:KIND[:LO..HI]]",
                     help="declare an input's static shape, kind and value range (repeatable)")
    imp.add_argument("--json", action="store_true")

    models = command("models", "list imported models")
    models.add_argument("--json", action="store_true")

    layers = command("layers", "list a model's layers with receptive field and stride")
    layers.add_argument("model", help="model id or name")
    layers.add_argument("--json", action="store_true")

    maximize = command("maximize", "synthesize the inputs that most excite units of a layer")
    maximize.add_argument("model", help="model id or name")
    maximize.add_argument("--layer", required=True, help="layer (tensor) name, its node name, or a logit output")
    maximize.add_argument("--units", required=True, help="0,3,7 | 0-15 | all | class names for a logit layer")
    maximize.add_argument("--target", choices=["channel", "neuron"], default="channel",
                          help="channel: summed over positions (the paper); neuron: the centre position")
    maximize.add_argument("--gamma", default="1", help="temporal regularization γ, comma-separated for several")
    maximize.add_argument("--kappa", type=float, default=1.0, help="spatial regularization κ")
    maximize.add_argument("--iters", type=int, default=None, help="optimizer steps (default 256)")
    maximize.add_argument("--seed", type=int, default=0)
    maximize.add_argument("--param", choices=["pixel", "fourier"], default=None,
                          help="how the input is optimized: pixel values (the paper's, default) or a spatiotemporal spectrum")
    maximize.add_argument("--recording", default="", help="normalize by this recording's maximum activations")
    maximize.add_argument("--out", type=Path, default=Path("out"), help="folder for result.npz (default out)")
    maximize.add_argument("--json", action="store_true")

    sweep = command("sweep", "headless batch: models × layers × units × settings from a TOML spec, resumable")
    sweep.add_argument("spec", type=Path, help="SPEC.toml (docs/sweep-example.toml shows the format)")
    sweep.add_argument("--out", type=Path, default=None, help="output folder (default: the spec's `out`, else out/SPEC-NAME)")
    sweep.add_argument("--restart", action="store_true", help="start over: delete the results an earlier sweep recorded "
                                                               "in the folder (needed after changing iterations, seed or settings)")
    sweep.add_argument("--detach", action="store_true", help="submit the sweep as a job and print its id at once "
                                                             "(`kinetoscope jobs` follows it and fetches its results)")
    sweep.add_argument("--json", action="store_true")

    jobs = command("jobs", "stored jobs on the server: list, show, watch, cancel, fetch results, delete")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="list|show|watch|cancel|results|delete")
    jobs_list = job_commands.add_parser("list", help="every job, newest first", parents=[common])
    jobs_list.add_argument("--state", default="", help="only these states, comma-separated (queued, running, succeeded, "
                                                       "failed, cancelled)")
    jobs_list.add_argument("--model", default="", help="only jobs of this model (id or name)")
    jobs_list.add_argument("--json", action="store_true")
    for name, help_text in (("show", "a job's state, counts and tasks"), ("watch", "follow a job with a progress bar "
                                                                                  "until it ends"),
                            ("cancel", "stop a job: queued tasks are dropped, running ones stop within a step"),
                            ("delete", "remove an ended job and the results no other job shares")):
        sub = job_commands.add_parser(name, help=help_text, parents=[common])
        sub.add_argument("job", help="the job's id (`kinetoscope jobs list`)")
        sub.add_argument("--json", action="store_true")
    jobs_results = job_commands.add_parser("results", help="write a job's finished units in the sweep folder layout, "
                                                           "with galleries", parents=[common])
    jobs_results.add_argument("job", help="the job's id")
    jobs_results.add_argument("--out", type=Path, required=True, help="output folder")
    jobs_results.add_argument("--json", action="store_true")

    record = command("record", "stream real clips through a model and record per-unit statistics "
                               "(â for --recording, top clips, per-class maximum)")
    record.add_argument("model", help="model id or name")
    clips = record.add_mutually_exclusive_group(required=True)
    clips.add_argument("--clips", type=Path, help="FILE.npz: one array [N, *input shape] per graph input, optional "
                                                  "'labels' [N] and 'ids' [N]")
    clips.add_argument("--videos", type=Path, help="a folder of videos, decoded and turned into the model's inputs")
    record.add_argument("--flow", choices=["tvl1", "dis"], default="tvl1",
                        help="optical flow for --videos: tvl1 (as two-stream networks were trained; slow) or dis (about 20x faster)")
    record.add_argument("--layers", required=True, help="layer (tensor or node) names, comma-separated")
    record.add_argument("--top", type=int, default=5, help="top clips kept per channel (default 5)")
    record.add_argument("--bins", type=int, default=0, help="histogram bins, even (default: the server's, 64)")
    record.add_argument("--name", default="", help="a name to refer to the recording by")
    record.add_argument("--json", action="store_true")

    analyze = command("analyze", "per-unit class selectivity (with a permutation test), stream reliance and speed "
                                 "tuning, measured on a recording's clips (docs/ANALYSIS.md)")
    analyze.add_argument("model", nargs="?", default="", help="model id or name")
    analyze.add_argument("--recording", default="", help="a recording of the model, made with labelled clips "
                                                         "(`kinetoscope record --clips FILE.npz` with 'labels')")
    analyze.add_argument("--evolution", nargs="+", type=Path, metavar="DIR",
                         help="instead: how optimized inputs change across checkpoints, from a sweep folder over "
                              "several checkpoints or one results folder per checkpoint in training order (local)")
    analyze.set_defaults(usage_error=analyze.error)
    analyze.add_argument("--layers", default="", help="layer (tensor or node) names, comma-separated "
                                                      "(default: the recording's layers)")
    analyze.add_argument("--permutations", type=int, default=0, help="label shuffles of the selectivity test (default 1000)")
    analyze.add_argument("--no-speed", action="store_true", help="skip speed tuning (one forward pass fewer per speed)")
    analyze.add_argument("--json", action="store_true")

    render = command("render", "write PNG/GIF/MP4 and an index.html gallery for a result.npz")
    render.add_argument("result", type=Path, help="DIR/result.npz from `kinetoscope maximize`")
    render.add_argument("--out", type=Path, default=None, help="gallery folder (default: beside the result)")
    render.add_argument("--recording", default="", help="add each unit's per-class maxima (and top clips, with --clips) "
                                                        "from this recording")
    render.add_argument("--clips", type=Path, default=None, help="the FILE.npz the recording was made from, for top-clip thumbnails")
    render.add_argument("--json", action="store_true")

    from .atlas.cli import add_atlas_arguments  # noqa: PLC0415 - argparse only; the writer loads on use

    atlas = command("atlas", "write a static site of every maximized unit: model, layer and unit pages "
                             "with measures, sortable tables and charts")
    add_atlas_arguments(atlas)

    zoo = command("zoo", "the paper's architectures: list them or export one to ONNX")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", required=True, metavar="list|export")
    zoo_list = zoo_commands.add_parser("list", help="list the zoo's architectures", parents=[common])
    zoo_list.add_argument("--json", action="store_true")
    zoo_export = zoo_commands.add_parser("export", help="export an architecture (random weights) to ONNX", parents=[common])
    zoo_export.add_argument("name", help="an architecture from `kinetoscope zoo list`")
    zoo_export.add_argument("--out", type=Path, required=True, help="FILE.onnx")
    zoo_export.add_argument("--classes", type=int)
    zoo_export.add_argument("--frames", type=int, help="flow fields L (two-stream) or clip length T (3D)")
    zoo_export.add_argument("--size", type=int, help="frame height and width in pixels")
    zoo_export.add_argument("--width", type=float, default=1.0, help="channel multiplier, e.g. 0.25 for a small variant")

    demo = command("demo", "the main job: maximize every class and some fusion units of the zoo's trained "
                           "two-stream model for γ ∈ {0,1,5,10}, record and measure its units; write the gallery "
                           "and the atlas")
    demo.add_argument("--out", type=Path, default=Path("out"))
    return parser


def command_name(args: argparse.Namespace) -> str:
    """`import`, `zoo export`, ...: what error lines start with after `kinetoscope `."""
    return " ".join(part for part in (args.command, getattr(args, "zoo_command", None), getattr(args, "jobs_command", None))
                    if part)


def one_line(message: str) -> str:
    """A message as one terminal line: its non-empty lines joined."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip()) or "failed"


def quiet_third_party(debug: bool) -> None:
    """Keeps gRPC core, absl, torch and Python warnings off the user's terminal unless --debug asks for them."""
    if debug:
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")


def configure_logging(debug: bool) -> None:
    """--debug: every log record with tracebacks; otherwise only the client's own warnings, one line each.

    An embedded server's records (an import worker's traceback, say) reach the user as
    the call's status message instead; a `kinetoscope serve` keeps its own log.
    """
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kinetoscope: %(message)s"))
    handler.addFilter(lambda record: record.name.startswith("kinetoscope.client") and not record.exc_info)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_third_party("--debug" in argv)  # before anything imports grpc or torch
    args = build_parser().parse_args(argv)
    if args.command == "analyze" and not args.evolution and not (args.model and args.recording):
        args.usage_error("the following arguments are required: model, --recording (or give --evolution DIR ...)")
    name = command_name(args)
    if args.command == "import" and not args.server:
        # the import worker's seconds of imports (torch, onnx, the converter) start now,
        # beside this process's own start-up, instead of after it
        from kinetoscope.server.sandbox import warm_up  # noqa: PLC0415 - torch-free; the embedded case only

        warm_up()
    if args.command == "serve":
        return _serve(args)
    configure_logging(args.debug)
    try:
        from . import commands  # noqa: PLC0415 - keeps `--help` fast

        try:
            return commands.run(args)
        except commands.UserError as exc:
            print(f"kinetoscope {name}: {one_line(str(exc))}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print(f"kinetoscope {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kinetoscope layers X | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback without --debug
        if args.debug:
            raise
        print(f"kinetoscope {name}: unexpected error ({type(exc).__name__}: {one_line(str(exc))}); "
              "rerun with --debug for the traceback", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    options = ServeOptions.from_args(args)
    if problem := options.problem():  # said before the seconds that importing the server takes
        print(f"kinetoscope serve: {problem}", file=sys.stderr)
        return 2
    from kinetoscope.server.main import main as serve_main  # noqa: PLC0415 - the server needs torch

    try:
        return serve_main(options=replace(options, log_level="DEBUG") if args.debug else options)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the server's own log has the details with --debug
        if args.debug:
            raise
        print(f"kinetoscope serve: {type(exc).__name__}: {one_line(str(exc))}; rerun with --debug for the traceback",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
