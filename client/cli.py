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


def default_store() -> Path:
    return Path(os.environ.get("KINETOSCOPE_HOME") or Path.home() / ".cache" / "kinetoscope")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinetoscope", description="See what video ConvNets have learned.")
    parser.add_argument("--store", type=Path, default=None, help="model store folder (default $KINETOSCOPE_HOME or ~/.cache/kinetoscope)")
    commands = parser.add_subparsers(dest="command", required=True)

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

    demo = commands.add_parser("demo", help="export a two-stream VGG-16 (narrow), import it, list its layers")
    demo.add_argument("--out", type=Path, default=Path("out"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from . import commands  # noqa: PLC0415 - keeps `--help` fast

    try:
        return commands.run(args)
    except commands.UserError as exc:
        print(f"kinetoscope {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
