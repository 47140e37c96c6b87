"""What each CLI command does, over gRPC (a remote server, or an embedded one in this process)."""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import grpc
import numpy as np

from .progress import Status, StepProgress, progress_enabled

CONNECT_TIMEOUT_S = 10.0
"""How long a command waits for a --server to answer before saying that none does."""


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def run(args: argparse.Namespace) -> int:
    handlers = {"import": cmd_import, "models": cmd_models, "layers": cmd_layers, "maximize": cmd_maximize,
                "render": cmd_render, "zoo": cmd_zoo, "demo": cmd_demo, "record": cmd_record, "sweep": cmd_sweep,
                "analyze": cmd_analyze, "atlas": cmd_atlas, "jobs": cmd_jobs}
    try:
        return handlers[args.command](args)
    except grpc.RpcError as exc:
        raise UserError(rpc_message(exc, args)) from None


def rpc_message(exc: grpc.RpcError, args: argparse.Namespace) -> str:
    """A failed call in the user's words: what the server said, or what to do when it could not be asked."""
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else None) or str(exc)
    where = f"the server at {args.server}" if args.server else "the embedded server"
    if code == grpc.StatusCode.UNAVAILABLE and args.server:
        return (f"no kinetoscope server answers at {args.server}; start one with `kinetoscope serve --address "
                f"{args.server}`, or leave out --server (and $KINETOSCOPE_SERVER) to use the local store")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if not args.token:
            return f"{where} requires a token: pass --token TOKEN or set $KINETOSCOPE_TOKEN ({details})"
        return f"{where} refused the token: check --token or $KINETOSCOPE_TOKEN ({details})"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"{where} refused the call: {details}"
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return f"{where} failed: {details} (its log, or --debug for an embedded one, has the details)"
    return details


def connect(args, *, warm_imports: bool = False):
    """A Client for --server, or for an embedded server on the store; checks what can be checked before calling."""
    from .client import Client  # noqa: PLC0415

    if args.server:
        host, _, port = args.server.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--server takes HOST:PORT (e.g. 127.0.0.1:50051), not {args.server!r}")
    elif args.store is not None and args.store.exists() and not args.store.is_dir():
        raise UserError(f"--store {args.store} is a file; give a folder (it is created if missing)")
    client = Client(args.server, store=args.store, token=args.token, warm_imports=warm_imports and not args.server,
                    resume_jobs=args.command in ("sweep", "jobs"))  # a quick command does not take up left-over jobs
    if args.server and not _answers(client.channel, CONNECT_TIMEOUT_S):
        client.close()
        raise UserError(f"no kinetoscope server answers at {args.server}; start one with `kinetoscope serve --address "
                        f"{args.server}`, or leave out --server (and $KINETOSCOPE_SERVER) to use the local store")
    return client


def _answers(channel: grpc.Channel, timeout_s: float) -> bool:
    """Whether the channel connects: False at the first failed attempt (a refused port) or after `timeout_s`."""
    import threading  # noqa: PLC0415

    settled = threading.Event()
    state: list[grpc.ChannelConnectivity] = []

    def watch(connectivity: grpc.ChannelConnectivity) -> None:
        if connectivity in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            state.append(connectivity)
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(timeout_s)
    finally:
        channel.unsubscribe(watch)
    return bool(state) and state[0] == grpc.ChannelConnectivity.READY


def _embedded_start(args, status: Status) -> None:
    if not args.server:
        status.say("starting the embedded server …")


def _emit(args, document, human: str) -> None:
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(human)


def cmd_import(args) -> int:
    if not args.model.is_file():
        raise UserError(f"{args.model} is not a file" + ("" if args.model.exists() else " (no such path)"))
    with Status(f"importing {args.model.name}") as status:
        _embedded_start(args, status)
        with connect(args, warm_imports=True) as client:
            status.say("starting the import worker, then check, fold, convert and verify against onnxruntime …"
                       if not args.server else f"uploading to {args.server}, then check, fold, convert and verify …")
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

    from .targets import find_layer, resolve_units, target_kind  # noqa: PLC0415
    from .units import UnitSpecError, objectives  # noqa: PLC0415

    try:
        gammas = [float(g) for g in args.gamma.split(",") if g.strip()]
    except ValueError:
        gammas = []
    if not gammas or not all(np.isfinite(gammas)):
        raise UserError(f"--gamma takes numbers like 0,1,5,10, not {args.gamma!r}")
    _check_out_folder(args.out)
    with connect(args) as client:
        info, layers = client.get_model(args.model)
        layer = find_layer(layers, args.layer)
        if layer is None:
            raise UserError(f"model {info.name} has no layer {args.layer!r}; see `kinetoscope layers {info.name}`")
        try:
            units = resolve_units(info, layer, args.units)
        except UnitSpecError as exc:
            raise UserError(str(exc)) from None
        if not units:
            raise UserError(f"--units {args.units!r} selects no units: use 0,3,7 or 0-15 or all")
        kind = target_kind(info, layer, args.target)
        options = pb.MaximizeOptions(seed=args.seed)
        if args.iters is not None:
            options.iterations = args.iters
        if args.param is not None:
            options.param = args.param
        settings = [(args.kappa, g) for g in gammas]
        with StepProgress(len(units) * len(settings), "maximize", "loading the model, first step") as progress:
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


def cmd_sweep(args) -> int:
    from .sweep import SweepError, load_spec, run_sweep  # noqa: PLC0415

    try:
        spec = load_spec(args.spec)
        with connect(args) as client:
            summary = run_sweep(client, spec, args.out, restart=args.restart, show_progress=progress_enabled(),
                                detach=args.detach)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt as exc:
        print(f"kinetoscope sweep: {exc or 'interrupted; run the same command again to resume'}", file=sys.stderr)
        return 130
    if args.detach:
        human = (f"job {summary.job}: {summary.batches - summary.skipped} batches submitted; follow it with "
                 f"`kinetoscope jobs watch {summary.job}`" if summary.job else f"nothing to run: every batch is saved in {summary.out}")
        _emit(args, {"job": summary.job}, human)
        return 0
    _emit(args, summary.to_json(), summary.describe())
    return 0


def cmd_jobs(args) -> int:
    from .progress import JobProgress  # noqa: PLC0415
    from .sweep import SweepError, follow_job, write_job_results  # noqa: PLC0415

    with connect(args) as client:
        command = args.jobs_command
        if command == "list":
            states = [s.strip().upper() for s in args.state.split(",") if s.strip()]
            unknown = [s for s in states if s not in JOB_STATES]
            if unknown:
                raise UserError(f"--state takes {', '.join(s.lower() for s in JOB_STATES)}, not {', '.join(unknown).lower()}")
            jobs = client.list_jobs(states, args.model)
            _emit(args, [job.to_json() for job in jobs], "\n".join(format_job(job) for job in jobs) or "no jobs")
        elif command == "show":
            info, tasks = client.get_job(args.job)
            doc = {**info.to_json(), "task_list": [task.to_json() for task in tasks]}
            lines = [format_job(info)] + [f"  task {t.index}: {t.state.lower()} {t.layer} units {_span(t.channels)}"
                                          f"{f' ({t.error})' if t.error else ''}" for t in tasks]
            _emit(args, doc, "\n".join(lines))
        elif command == "watch":
            info, _ = client.get_job(args.job)
            with JobProgress(info.total, f"job {args.job}") as bar:
                follow_job(client, args.job, bar)
            info, _ = client.get_job(args.job)
            _emit(args, info.to_json(), format_job(info))
        elif command == "cancel":
            info = client.cancel_job(args.job)
            _emit(args, info.to_json(), format_job(info))
        elif command == "delete":
            _emit(args, {"deleted": client.delete_job(args.job)}, f"deleted job {args.job}")
        else:
            _check_out_folder(args.out)
            try:
                summary = write_job_results(client, args.job, args.out)
            except SweepError as exc:
                raise UserError(str(exc)) from None
            _emit(args, summary.to_json(), summary.describe())
    return 0


JOB_STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")


def format_job(job) -> str:
    when = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")
    return (f"{job.id}  {job.state.lower():<9} {job.kind:<8} {job.done}/{job.total} tasks done"
            + (f", {job.failed} failed" if job.failed else "") + (f", {job.cancelled} cancelled" if job.cancelled else "")
            + f"  {when}" + (f"  {job.name}" if job.name else "") + (f"\n  error: {job.error}" if job.error else ""))


def _span(units) -> str:
    return f"{units[0]}-{units[-1]}" if len(units) > 1 else ",".join(map(str, units))


def cmd_record(args) -> int:
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    if not layers:
        raise UserError("--layers takes layer names like conv_fusion,logits")
    with connect(args) as client:
        info, _ = client.get_model(args.model)
        clips, labels, ids = read_clips(args, info)
        count = len(next(iter(clips.values())))
        with Status("record") as status:
            status.say(f"recording {', '.join(layers)} of {info.name} over {count} clips …")
            try:
                recorded = client.record(info.id, clips, labels, ids, layers=layers, top_k=args.top, name=args.name,
                                         histogram_bins=args.bins)
            except ValueError as exc:
                raise UserError(str(exc)) from None
        recording = client.get_recording(recorded.id)
    lines = [f"recording {recorded.id}: {recorded.clips} clips of {info.name} ({info.id})"]
    for name, layer in recording.layers.items():
        best = int(layer.max.argmax())
        lines.append(f"  {name}: {layer.channels} channels, â from {layer.max.min():.3g} to {layer.max.max():.3g} "
                     f"(channel {best}; top clips {', '.join(layer.top_ids[best])})")
    lines.append(f"use it with: kinetoscope maximize {info.name} --layer L --units U --recording {recorded.id}")
    _emit(args, recording.to_json(), "\n".join(lines))
    return 0


def cmd_atlas(args) -> int:
    from .atlas.cli import run_atlas  # noqa: PLC0415

    with connect(args) as client:
        return run_atlas(args, client)


def cmd_analyze(args) -> int:
    if args.evolution:
        from .atlas.evolution import run_evolution  # noqa: PLC0415

        return run_evolution(args)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    if args.layers and not layers:
        raise UserError("--layers takes layer names like conv_fusion,logits")
    if args.permutations < 0:
        raise UserError(f"--permutations takes a positive number of label shuffles, not {args.permutations}")
    with connect(args) as client:
        with Status("analyze") as status:
            status.say(f"measuring the units of {args.model} on recording {args.recording} …")
            document = client.analyze(args.model, args.recording, layers, permutations=args.permutations,
                                      skip_speed=args.no_speed)
    _emit(args, document, format_analysis(document))
    return 0


def format_analysis(document: dict) -> str:
    """One row per unit: layer, unit, selectivity, label, top class, stream reliance (and stream label)."""
    def number(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [f"{document['clips']} labelled clips of recording {document['recording']}; class-specific: p <= "
             f"{document['alpha']:g} over {document['permutations']} label shuffles",
             f"{'layer':<20} {'unit':>5} {'select.':>7}  {'label':<14} {'top class':<18} reliance"]
    for layer, units in document["layers"].items():
        for unit in units:
            reliance = ", ".join(f"{name} {number(value)}" for name, value in unit["stream_reliance"].items())
            if unit["stream_label"]:
                reliance += f" ({unit['stream_label']})"
            lines.append(f"{layer[:20]:<20} {unit['channel']:>5} {number(unit['selectivity']):>7}  {unit['label']:<14} "
                         f"{str(unit['top_class_name'])[:18]:<18} {reliance or '-'}")
    return "\n".join(lines)


def read_clips(args, info) -> tuple[dict[str, np.ndarray], np.ndarray | None, list[str] | None]:
    """The clips of --clips FILE.npz or --videos DIR: arrays per graph input, labels and ids (None when absent)."""
    found = videos_as_clips(args.videos, info, args.flow) if args.videos is not None else read_npz(args.clips)
    names = [i.name for i in info.inputs]
    missing = [name for name in names if name not in found]
    extra = [key for key in found if key not in (*names, "labels", "ids")]
    if missing or extra:
        raise UserError(f"the clips need one array per graph input ({', '.join(names)}) and optionally 'labels' and 'ids'; "
                        + (f"missing {', '.join(missing)}" if missing else "") + ("; " if missing and extra else "")
                        + (f"unknown {', '.join(extra)}" if extra else ""))
    labels = found.get("labels")
    if labels is not None and not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"'labels' must hold integers (class indices), not {labels.dtype}")
    ids = [str(i) for i in np.asarray(found["ids"]).tolist()] if "ids" in found else None
    return {name: found[name] for name in names}, labels, ids


def read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("it holds a single array, not named arrays (write it with numpy.savez)")
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read {path} as .npz: {exc}") from None


def videos_as_clips(folder: Path, info, flow_method: str = "tvl1") -> dict[str, np.ndarray]:
    """FOLDER/<class>/<video files> decoded into the model's inputs, as an .npz would hold them.

    Sub-folders named after the model's classes label their clips with those classes;
    a model without class names takes the sorted sub-folders as classes 0, 1, ...;
    otherwise the clips go unlabelled (per-class maxima need the model's own classes).
    """
    try:
        from .video import clips_from_videos  # noqa: PLC0415 - decoding needs PyAV and OpenCV
    except ImportError as exc:
        raise UserError(f"--videos needs video decoding, which this installation lacks ({exc}); "
                        "use --clips FILE.npz") from None
    try:
        clips = clips_from_videos(folder, info.inputs, flow_method=flow_method)
    except (OSError, ValueError) as exc:
        raise UserError(str(exc)) from None
    found = {**clips.inputs, "ids": np.array(clips.ids)}
    if not info.class_names:
        found["labels"] = clips.labels
    elif all(name in info.class_names for name in clips.class_names):
        found["labels"] = np.array([info.class_names.index(clips.class_names[i]) for i in clips.labels], np.int64)
    else:
        unknown = [name for name in clips.class_names if name not in info.class_names]
        print(f"note: sub-folders {', '.join(unknown)} are not classes of {info.name}; recording without labels",
              file=sys.stderr)
    return found


def cmd_render(args) -> int:
    from .render.cli import render_result  # noqa: PLC0415

    if not args.result.is_file():
        raise UserError(f"{args.result} is not a file; run `kinetoscope maximize ... --out DIR` first")
    read_npz(args.result)  # a file that is no .npz at all, said before anything else runs
    if args.out is not None:
        _check_out_folder(args.out)
    recording = _gallery_recording(args) if args.recording else None
    try:
        index = render_result(args.result, args.out, recording=recording)
    except (ValueError, KeyError) as exc:
        raise UserError(f"{args.result} is not a kinetoscope result: {exc}" if isinstance(exc, KeyError) else str(exc)) from None
    _emit(args, {"index": str(index)}, f"gallery: {index}")
    return 0


def _gallery_recording(args) -> dict:
    """The recording's per-unit column for the gallery: per-class maxima, and top clips when --clips is given."""
    from .render.recorded import gallery_recording  # noqa: PLC0415
    from .render.result import ResultError, load_result  # noqa: PLC0415

    try:
        result = load_result(args.result)
    except ResultError as exc:
        raise UserError(str(exc)) from None
    with connect(args) as client:
        recording = client.get_recording(args.recording)
    clips = None
    if args.clips is not None:
        found = read_npz(args.clips)
        clips = {name: array for name, array in found.items() if name not in ("labels", "ids")}
    return gallery_recording(recording, result, clips, list(result.class_names) if result.class_names else None)


def cmd_zoo(args) -> int:
    if args.zoo_command == "export":  # what needs no torch is checked before torch is imported
        for flag, value in (("--classes", args.classes), ("--frames", args.frames), ("--size", args.size),
                            ("--width", args.width)):
            if value is not None and not value > 0:
                raise UserError(f"{flag} takes a positive number, not {value:g}")
        if not args.out.parent.is_dir():
            raise UserError(f"cannot write {args.out}: folder {args.out.parent} does not exist")
    from kinetoscope.model_zoo.export import export_model, zoo_listing  # noqa: PLC0415

    if args.zoo_command == "list":
        listing = zoo_listing()
        _emit(args, listing, "\n".join(f"{m['name']:<24} {m['description']}" for m in listing))
        return 0
    try:
        export_model(args.name, args.out, classes=args.classes, frames=args.frames, size=args.size, width=args.width)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None
    except ValueError as exc:  # sizes an architecture cannot take; the message names the minimum
        raise UserError(str(exc)) from None
    except RuntimeError as exc:  # torch refusing a shape the architecture check let through
        asked = " ".join(f"--{flag} {value}" for flag, value in (("frames", args.frames), ("size", args.size)) if value)
        raise UserError(f"{args.name} cannot take {asked or 'these sizes'}: {one_line(str(exc))}; "
                        "use larger --frames / --size") from None
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


def _check_out_folder(out: Path) -> None:
    """An output folder that cannot be one is said before any long work starts."""
    blocking = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write into {out}: {blocking} is a file; choose another folder with --out")


def one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def cmd_demo(args) -> int:
    """The main job end to end: the zoo's trained two-stream model, every class and some fusion units, γ sweep."""
    from .atlas.demo import DemoSettings, run_demo  # noqa: PLC0415

    settings = DemoSettings()
    _check_out_folder(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    with Status("demo") as status:
        _embedded_start(args, status)
        with connect(args) as client:
            def progress(total: int) -> StepProgress:
                status.clear()
                return StepProgress(total, "maximize", "loading the model, building the native step")

            made = run_demo(client, args.out, settings, say=status.say, progress=progress)
            status.clear()
    print(f"maximized {made.units} units × γ ∈ {{{', '.join(f'{g:g}' for g in settings.gammas)}}} "
          f"in {made.seconds:.0f} s on {made.model.name} ({made.model.id})")
    for line in analysis_summary(made.analysis):
        print(line)
    print(f"atlas: {made.atlas}")
    print(f"gallery: {made.gallery}")
    return 0


DEMO_LAYERS = ("conv_fusion", "logits")


def analysis_summary(analysis: dict) -> list[str]:
    """One line per layer: how many units are class-specific, and which stream they rely on."""
    lines = []
    for layer, units in analysis["layers"].items():
        specific = sum(unit.get("label") == "class-specific" for unit in units)
        own = sum(unit.get("top_class") == unit.get("channel") for unit in units)
        streams: dict[str, int] = {}
        for unit in units:
            if unit.get("stream_label"):
                streams[unit["stream_label"]] = streams.get(unit["stream_label"], 0) + 1
        text = f"{layer}: {specific} of {len(units)} units class-specific"
        if layer == "logits":
            text += f", {own} of {len(units)} prefer their own class"
        if streams:
            text += "; relying on " + ", ".join(f"{name} {count}" for name, count in sorted(streams.items()))
        lines.append(text)
    return lines
