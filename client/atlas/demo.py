"""What `kinetoscope demo` makes, as one function: maximize, record, measure, then the gallery and the atlas.

The command line runs it with the published settings; tests run the same function with
fewer units, steps and clips, so the atlas they check is made the way the demo makes it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DEMO_LAYERS = ("conv_fusion", "logits")
DEMO_INPUTS = ("rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow")


@dataclass(frozen=True)
class DemoSettings:
    """What the demo maximizes and records; the defaults are the command's."""

    gammas: tuple[float, ...] = (0.0, 1.0, 5.0, 10.0)
    logits: tuple[int, ...] | None = None
    """Class logits to maximize; None: every class."""
    fusion_units: tuple[int, ...] = tuple(range(6))
    iterations: int = 0
    """Steps per unit; 0: the server's default."""
    clips_per_class: int = 10
    permutations: int = 0
    """Label shuffles of the selectivity test; 0: the server's default."""


@dataclass(frozen=True)
class DemoOutput:
    """Where the demo wrote its files, and what it measured."""

    result: Path
    gallery: Path
    atlas: Path
    model: Any  # ModelInfo
    units: int
    seconds: float
    analysis: dict


def demo_model_file() -> Path:
    """The zoo's trained two-stream model, in a source checkout or an installed package."""
    here = Path(__file__).resolve().parent.parent.parent / "model_zoo" / "trained" / "two_stream_small.onnx"
    if here.is_file():
        return here
    import kinetoscope.model_zoo as zoo  # noqa: PLC0415 - installed (non-editable) layout

    return Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"


def run_demo(client: Any, out: Path, settings: DemoSettings = DemoSettings(), *,
             say: Callable[[str], None] = lambda text: None,
             progress: Callable[[int], AbstractContextManager] = lambda total: nullcontext(None)) -> DemoOutput:
    """Imports the trained model through `client`, maximizes, records and measures, and writes OUT/atlas.

    `say` reports each stage; `progress(total)` gives the maximization's progress callback
    as a context manager (None for none).
    """
    from kinetoscope.model_zoo.synthetic import SyntheticActions  # noqa: PLC0415
    from kinetoscope.v1 import kinetoscope_pb2 as pb  # noqa: PLC0415

    from ..render.cli import render_result  # noqa: PLC0415
    from ..render.result import load_result  # noqa: PLC0415
    from ..units import objectives  # noqa: PLC0415
    from .writer import write_atlas  # noqa: PLC0415

    model_file = demo_model_file()
    say(f"importing {model_file.name} (trained on synthetic moving shapes) …")
    info = client.import_model(model_file, name="two_stream_small", inputs=list(DEMO_INPUTS))
    logits = settings.logits if settings.logits is not None else tuple(range(len(info.class_names) or 10))
    wanted = objectives("logits", list(logits), "logit") + objectives("conv_fusion", list(settings.fusion_units), "channel")
    regularizers = [(1.0, g) for g in settings.gammas]
    options = pb.MaximizeOptions(seed=0)
    if settings.iterations:
        options.iterations = settings.iterations
    with progress(len(wanted) * len(regularizers)) as report:
        result = client.maximize(info.id, wanted, regularizers, options=options, progress=report)
    say(f"recording {settings.clips_per_class} synthetic clips per class …")
    data = SyntheticActions()
    clips = data.batch(settings.clips_per_class * len(data.class_names), seed=1)
    recorded = client.record(info.id, {"rgb": clips.rgb, "flow": clips.flow}, clips.label, layers=list(DEMO_LAYERS),
                             name="demo")
    say("measuring every unit: class selectivity, stream reliance, speed tuning …")
    analysis = client.analyze(info.id, recorded.id, list(DEMO_LAYERS), permutations=settings.permutations)
    model_info, layers = client.get_model(info.id)
    recording = client.get_recording(recorded.id)
    path = out / "result.npz"
    result.save_npz(path)
    gallery = render_result(path, out)
    atlas = write_atlas(out / "atlas", model_info, layers, [load_result(path)], recording, analysis,
                        clips={"rgb": clips.rgb, "flow": clips.flow})
    return DemoOutput(path, gallery, atlas, info, len(result.units), result.seconds, analysis)


__all__ = ["DEMO_LAYERS", "DemoOutput", "DemoSettings", "demo_model_file", "run_demo"]
