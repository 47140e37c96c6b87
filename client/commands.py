"""What each CLI command does; in-process against the local store for now."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

_STAGES = ["load", "check", "normalize", "fold", "convert", "verify", "catalog"]


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def run(args: argparse.Namespace) -> int:
    handler = {"import": cmd_import, "models": cmd_models, "layers": cmd_layers, "zoo": cmd_zoo, "demo": cmd_demo}[args.command]
    return handler(args)


def _library(args):
    from kinetoscope.server.library import ModelLibrary  # noqa: PLC0415 - torch only when needed
    from kinetoscope.server.store import ModelStore  # noqa: PLC0415

    from .cli import default_store  # noqa: PLC0415

    return ModelLibrary(ModelStore(args.store or default_store()))


def _emit(args, document, human: str) -> None:
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(human)


def import_file(args, path: Path, name: str | None, inputs: list[str]):
    from kinetoscope.server.importer import ImportFailed  # noqa: PLC0415
    from kinetoscope.model_files import read_model_files  # noqa: PLC0415

    if not path.is_file():
        raise UserError(f"{path} is not a file")
    data, external = read_model_files(path)
    library = _library(args)
    with tqdm(total=len(_STAGES), desc=f"import {path.name}", unit="stage", file=sys.stderr, leave=False) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        try:
            return library.import_bytes(data, name=name or path.stem, inputs=inputs, external_data=external, progress=progress)
        except ImportFailed as exc:
            raise UserError(str(exc)) from None


def _import_document(stored) -> dict:
    meta = stored.meta
    return {
        "id": stored.id,
        "name": stored.name,
        "inputs": meta["inputs"],
        "layers": meta["layers"],
        "parity": meta["parity"],
        "bn_folded": meta["bn_folded"],
        "bn_remaining": meta["bn_remaining"],
    }


def cmd_import(args) -> int:
    stored = import_file(args, args.model, args.name, args.input)
    doc = _import_document(stored)
    inputs = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))} ({i['kind']})" for i in doc["inputs"])
    guessed = [i["name"] for i in doc["inputs"] if i.get("inferred")]
    human = (
        f"imported {doc['name']} as {doc['id']}: {doc['layers']} layers; inputs {inputs}\n"
        f"parity vs onnxruntime: max abs {doc['parity']['max_abs_err']:.2e}, max rel {doc['parity']['max_rel_err']:.2e}; "
        f"BatchNorm folded {doc['bn_folded']}, kept as affine {doc['bn_remaining']}"
    )
    if guessed:
        human += f"\n(kind/range inferred for {', '.join(guessed)}; declare with --input NAME=SHAPE:KIND:LO..HI)"
    _emit(args, doc, human)
    return 0


def cmd_models(args) -> int:
    stored = _library(args).store.list()
    doc = [_import_document(s) for s in stored]
    lines = [f"{d['id']}  {d['name']:<24} {d['layers']:>4} layers  rel err {d['parity']['max_rel_err']:.1e}" for d in doc]
    _emit(args, doc, "\n".join(lines) or "no models yet: kinetoscope import MODEL.onnx")
    return 0


def cmd_layers(args) -> int:
    from kinetoscope.server.store import ModelNotFound  # noqa: PLC0415

    try:
        stored = _library(args).store.get(args.model)
    except ModelNotFound as exc:
        raise UserError(str(exc)) from None
    catalog = stored.meta["catalog"]
    _emit(args, catalog, format_layers(catalog))
    return 0


def format_layers(catalog: list[dict]) -> str:
    rows = [("layer", "shape", "ch", "receptive field", "stride", "streams")]
    for layer in catalog:
        rf = "; ".join(f"{src} " + "x".join(f"{v}" for v in axes.values()) for src, axes in layer["receptive_field"].items())
        st = "; ".join(f"{src} " + "x".join(f"{v}" for v in axes.values()) for src, axes in layer["stride"].items())
        rows.append((layer["name"], "x".join(map(str, layer["shape"])), str(layer["channels"]), rf, st, layer["streams"]))
    widths = [min(48, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell[:48].ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_zoo(args) -> int:
    from kinetoscope.model_zoo.export import export_model, zoo_listing  # noqa: PLC0415

    if args.zoo_command == "list":
        listing = zoo_listing()
        lines = [f"{m['name']:<24} {m['description']}" for m in listing]
        _emit(args, listing, "\n".join(lines))
        return 0
    try:
        export_model(args.name, args.out, classes=args.classes, frames=args.frames, size=args.size, width=args.width)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from kinetoscope.model_zoo.export import export_model  # noqa: PLC0415

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "two_stream_vgg16.onnx"
    print(f"exporting a narrow two-stream VGG-16 to {path} ...", file=sys.stderr)
    export_model("vgg16_two_stream", path, classes=10, width=1 / 8, size=112)
    stored = import_file(args, path, "two_stream_vgg16", [])
    doc = _import_document(stored)
    print(f"imported {doc['name']} as {doc['id']} (parity max rel err {doc['parity']['max_rel_err']:.1e}, "
          f"{doc['bn_folded']} BN folded)\n")
    print(format_layers(stored.meta["catalog"]))
    return 0
