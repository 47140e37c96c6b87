"""The `kinetoscope` command line.

Model commands run in-process against a local store (`--store`, `$KINETOSCOPE_HOME`,
or ~/.cache/kinetoscope). `--json` prints exactly one JSON document on stdout;
progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

_LOGGER = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinetoscope", description="See what video ConvNets have learned.")
    parser.add_argument("--server", default=os.environ.get("KINETOSCOPE_SERVER"),
                        help="HOST:PORT of a running `kinetoscope serve` (default $KINETOSCOPE_SERVER; "
                             "without it an embedded server runs in this process)")
    parser.add_argument("--store", type=Path, default=None, help="model store folder (default $KINETOSCOPE_HOME or ~/.cache/kinetoscope)")
    parser.add_argument("--token", default=os.environ.get("KINETOSCOPE_TOKEN"), help="bearer token for the server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("rest", nargs=argparse.REMAINDER, help="[--address 127.0.0.1:50051] [--device auto|cpu|cuda] [--tls-cert F --tls-key F]")

    imp = commands.add_parser("import", help="import an ONNX model: check, fold BN, convert, verify, catalog")
    imp.add_argument("model", type=Path, help="MODEL.onnx (external-data files beside it are sent along)")
    imp.add_argument("--name", help="a name to refer to the model by")
    imp.add_argument("--input", action="append", default=[], metavar="NAME=1x3x224x224[:KIND[:LO..HI]]",
                     help="declare an input's static shape, kind and value range (repeatable)")
    imp.add_argument("--json", action="store_true")

    models = commands.add_parser("models", help="list imported models")
    models.add_argument("--json", action="store_true")

    layers = commands.add_parser("layers", help="list a model's layers with receptive field and stride")
    layers.add_argument("model", help="model id or name")
    layers.add_argument("--json", action="store_true")

    maximize = commands.add_parser("maximize", help="synthesize the inputs that most excite units of a layer")
    maximize.add_argument("model", help="model id or name")
    maximize.add_argument("--layer", required=True, help="layer (tensor) name, its node name, or a logit output")
    maximize.add_argument("--units", required=True, help="0,3,7 | 0-15 | all | class names for a logit layer")
    maximize.add_argument("--target", choices=["channel", "neuron"], default="channel",
                          help="channel: summed over positions (the paper); neuron: the centre position")
    maximize.add_argument("--gamma", default="1", help="temporal regularization γ, comma-separated for several")
    maximize.add_argument("--kappa", type=float, default=1.0, help="spatial regularization κ")
    maximize.add_argument("--iters", type=int, default=None, help="optimizer steps (default 256)")
    maximize.add_argument("--seed", type=int, default=0)
    maximize.add_argument("--recording", default="", help="normalize by this recording's maximum activations")
    maximize.add_argument("--out", type=Path, default=Path("out"))
    maximize.add_argument("--json", action="store_true")

    sweep = commands.add_parser("sweep", help="headless batch: models × layers × units × settings from a TOML spec, resumable")
    sweep.add_argument("spec", type=Path, help="SPEC.toml (docs/sweep-example.toml shows the format)")
    sweep.add_argument("--out", type=Path, default=None, help="output folder (default: the spec's `out`, else out/SPEC-NAME)")
    sweep.add_argument("--restart", action="store_true", help="start over: delete the results an earlier sweep recorded in the folder "
                            "(needed after changing iterations, seed or settings)")
    sweep.add_argument("--json", action="store_true")

    record = commands.add_parser("record", help="stream real clips through a model and record per-unit statistics "
                                                "(â for --recording, top clips, per-class maximum)")
    record.add_argument("model", help="model id or name")
    clips = record.add_mutually_exclusive_group(required=True)
    clips.add_argument("--clips", type=Path, help="FILE.npz: one array [N, *input shape] per graph input, optional "
                                                  "'labels' [N] and 'ids' [N]")
    clips.add_argument("--videos", type=Path, help="a folder of videos, decoded and turned into the model's inputs")
    record.add_argument("--layers", required=True, help="layer (tensor or node) names, comma-separated")
    record.add_argument("--top", type=int, default=5, help="top clips kept per channel (default 5)")
    record.add_argument("--bins", type=int, default=0, help="histogram bins, even (default: the server's, 64)")
    record.add_argument("--name", default="", help="a name to refer to the recording by")
    record.add_argument("--json", action="store_true")

    render = commands.add_parser("render", help="write PNG/GIF/MP4 and an index.html gallery for a result.npz")
    render.add_argument("result", type=Path, help="DIR/result.npz from `kinetoscope maximize`")
    render.add_argument("--out", type=Path, default=None, help="gallery folder (default: beside the result)")
    render.add_argument("--recording", default="", help="add each unit's per-class maxima (and top clips, with --clips) from this recording")
    render.add_argument("--clips", type=Path, default=None, help="the FILE.npz the recording was made from, for top-clip thumbnails")
    render.add_argument("--json", action="store_true")

    zoo = commands.add_parser("zoo", help="the paper's architectures: list them or export one to ONNX")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", required=True)
    zoo_list = zoo_commands.add_parser("list", help="list the zoo's architectures")
    zoo_list.add_argument("--json", action="store_true")
    zoo_export = zoo_commands.add_parser("export", help="export an architecture (random weights) to ONNX")
    zoo_export.add_argument("name")
    zoo_export.add_argument("--out", type=Path, required=True, help="FILE.onnx")
    zoo_export.add_argument("--classes", type=int)
    zoo_export.add_argument("--frames", type=int, help="flow fields L (two-stream) or clip length T (3D)")
    zoo_export.add_argument("--size", type=int)
    zoo_export.add_argument("--width", type=float, default=1.0, help="channel multiplier, e.g. 0.25 for a small variant")

    demo = commands.add_parser("demo", help="the main job: maximize every class and some fusion units of the "
                                           "zoo's trained two-stream model for γ ∈ {0,1,5,10}; write the gallery")
    demo.add_argument("--out", type=Path, default=Path("out"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from . import commands  # noqa: PLC0415 - keeps `--help` fast

    if args.command == "serve":
        from kinetoscope.server.main import main as serve_main  # noqa: PLC0415 - the server needs torch

        extra = ["--store", str(args.store)] if args.store else []
        extra += ["--token", args.token] if args.token else []
        return serve_main([*extra, *args.rest])
    try:
        return commands.run(args)
    except commands.UserError as exc:
        print(f"kinetoscope {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
