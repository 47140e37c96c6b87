"""What each CLI command does, over gRPC (a remote server, or an embedded one in this process)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
from tqdm import tqdm


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def run(args: argparse.Namespace) -> int:
    handlers = {"import": cmd_import, "models": cmd_models, "layers": cmd_layers, "maximize": cmd_maximize,
                "render": cmd_render, "zoo": cmd_zoo, "demo": cmd_demo}
    try:
        return handlers[args.command](args)
    except grpc.RpcError as exc:
        raise UserError(f"{exc.code().name}: {exc.details()}") from None


def connect(args):
    from .client import Client  # noqa: PLC0415

    return Client(args.server, store=args.store, token=args.token)


def _emit(args, document, human: str) -> None:
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(human)


def cmd_import(args) -> int:
    if not args.model.is_file():
        raise UserError(f"{args.model} is not a file")
    with connect(args) as client:
        print(f"importing {args.model} ...", file=sys.stderr)
        try:
            info = client.import_model(args.model, name=args.name, inputs=args.input)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    doc = info.to_json()
    inputs = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))} ({i['kind']})" for i in doc["inputs"])
    guessed = [i["name"] for i in doc["inputs"] if i["inferred"]]
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
    with connect(args) as client:
        docs = [m.to_json() for m in client.list_models()]
    lines = [f"{d['id']}  {d['name']:<24} {d['layers']:>4} layers  rel err {d['parity']['max_rel_err']:.1e}" for d in docs]
    _emit(args, docs, "\n".join(lines) or "no models yet: kinetoscope import MODEL.onnx")
    return 0


def cmd_layers(args) -> int:
    with connect(args) as client:
        _, layers = client.get_model(args.model)
    catalog = [layer.to_json() for layer in layers]
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


def cmd_maximize(args) -> int:
    from kinetoscope.v1 import kinetoscope_pb2 as pb  # noqa: PLC0415

    from .units import UnitSpecError, objectives, parse_units  # noqa: PLC0415

    try:
        gammas = [float(g) for g in args.gamma.split(",") if g.strip()]
    except ValueError:
        raise UserError(f"--gamma takes numbers like 0,1,5,10, not {args.gamma!r}") from None
    with connect(args) as client:
        info, layers = client.get_model(args.model)
        layer = next((l for l in layers if args.layer in (l.name, l.node)), None)
        if layer is None:
            raise UserError(f"model {info.name} has no layer {args.layer!r}; see `kinetoscope layers {info.name}`")
        is_logit = layer.name in info.outputs and len(layer.shape) == 2
        try:
            units = parse_units(args.units, layer.channels, info.class_names if is_logit else None)
        except UnitSpecError as exc:
            raise UserError(str(exc)) from None
        kind = "logit" if is_logit else args.target
        options = pb.MaximizeOptions(seed=args.seed)
        if args.iters is not None:
            options.iterations = args.iters
        settings = [(args.kappa, g) for g in gammas]
        with tqdm(total=len(units) * len(settings), desc="maximize", unit="unit", file=sys.stderr, leave=False) as bar:
            def progress(event) -> None:
                position = event.samples_done + len(event.activation) * (event.step + 1) / max(event.iterations, 1)
                bar.n = round(position, 2)
                bar.set_postfix_str(f"step {event.step + 1}/{event.iterations}")
                bar.refresh()

            result = client.maximize(info.id, objectives(layer.name, units, kind), settings, options=options,
                                     recording=args.recording, progress=progress)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "result.npz"
    result.save_npz(path)
    table = result.activation_table()
    doc = {"result": str(path), "model": info.id, "layer": layer.name, "units": result.units, "gammas": result.gammas,
           "kappas": result.kappas, "activation": table.tolist(), "warnings": result.warnings, "seconds": result.seconds}
    human = "\n".join(f"{u}: " + "  ".join(f"γ={g:g} {a:.3g}" for g, a in zip(result.gammas, row)) for u, row in zip(result.units, table))
    human += f"\nwrote {path}" + "".join(f"\nnote: {w}" for w in result.warnings)
    _emit(args, doc, human)
    return 0


def cmd_render(args) -> int:
    from .render.cli import render_result  # noqa: PLC0415

    if not args.result.is_file():
        raise UserError(f"{args.result} is not a file; run `kinetoscope maximize ... --out DIR` first")
    try:
        index = render_result(args.result, args.out)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _emit(args, {"index": str(index)}, f"gallery: {index}")
    return 0


def cmd_zoo(args) -> int:
    from kinetoscope.model_zoo.export import export_model, zoo_listing  # noqa: PLC0415

    if args.zoo_command == "list":
        listing = zoo_listing()
        _emit(args, listing, "\n".join(f"{m['name']:<24} {m['description']}" for m in listing))
        return 0
    try:
        export_model(args.name, args.out, classes=args.classes, frames=args.frames, size=args.size, width=args.width)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    """The main job end to end: the zoo's trained two-stream model, every class and some fusion units, γ sweep."""
    from kinetoscope.v1 import kinetoscope_pb2 as pb  # noqa: PLC0415

    from .render.cli import render_result  # noqa: PLC0415
    from .units import objectives  # noqa: PLC0415

    model_file = Path(__file__).resolve().parent.parent / "model_zoo" / "trained" / "two_stream_small.onnx"
    if not model_file.is_file():
        import kinetoscope.model_zoo as zoo  # noqa: PLC0415 - installed (non-editable) layout

        model_file = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
    gammas = [0.0, 1.0, 5.0, 10.0]
    args.out.mkdir(parents=True, exist_ok=True)
    with connect(args) as client:
        print(f"importing {model_file.name} (trained on synthetic moving shapes) ...", file=sys.stderr)
        info = client.import_model(model_file, name="two_stream_small",
                                   inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])
        wanted = objectives("logits", list(range(len(info.class_names) or 10)), "logit")
        wanted += objectives("conv_fusion", list(range(6)), "channel")
        settings = [(1.0, g) for g in gammas]
        with tqdm(total=len(wanted) * len(settings), desc="maximize", unit="unit", file=sys.stderr, leave=False) as bar:
            def progress(event) -> None:
                bar.n = round(event.samples_done + len(event.activation) * (event.step + 1) / max(event.iterations, 1), 2)
                bar.refresh()

            result = client.maximize(info.id, wanted, settings, options=pb.MaximizeOptions(seed=0), progress=progress)
    path = args.out / "result.npz"
    result.save_npz(path)
    index = render_result(path, args.out)
    print(f"maximized {len(result.units)} units × γ ∈ {{{', '.join(f'{g:g}' for g in gammas)}}} "
          f"in {result.seconds:.0f} s on {info.name} ({info.id})")
    print(f"gallery: {index}")
    return 0
