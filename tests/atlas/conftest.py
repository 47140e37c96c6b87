"""A real atlas source, made once per session: the zoo's trained two-stream model through the client.

An embedded server imports `two_stream_small.onnx`, records 40 synthetic clips, and runs
two short maximizations (three `conv_fusion` channels and two class logits, γ ∈ {0, 10},
16 steps) into two result files, as `kinetoscope maximize --out` would. The analysis
document is computed with the engine's own measures (selectivity, stream reliance,
speed tuning) in the shape the service returns. About 15 s on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kinetoscope.model_zoo as zoo
from kinetoscope.client.client import Client
from kinetoscope.client.render.result import Result, load_result
from kinetoscope.client.types import LayerInfo, ModelInfo, Recording
from kinetoscope.client.units import objectives
from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.v1 import kinetoscope_pb2 as pb

MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
INPUTS = ["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"]
GAMMAS = (0.0, 10.0)
FUSION_UNITS = (0, 1, 2)
LOGIT_UNITS = (0, 5)
CLIPS = 40
ANALYZED = ("conv_fusion", "logits")


@dataclass(frozen=True)
class Source:
    """Everything `write_atlas` takes, from one real session with the model."""

    model_info: ModelInfo
    layers: list[LayerInfo]
    results: list[Result]
    result_dir: Path
    recording: Recording
    analysis: dict[str, Any]
    clips: dict[str, np.ndarray]
    store: Path


def _analysis(clips: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    """The per-unit measures document, from the engine's analysis functions on the same clips."""
    from kinetoscope.server.engine.analysis.reliance import stream_reliance  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.responses import response_function  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.selectivity import PermutationConfig, selectivity  # noqa: PLC0415
    from kinetoscope.server.engine.analysis.speed import speed_tuning  # noqa: PLC0415
    from kinetoscope.server.importer import import_model  # noqa: PLC0415

    model = import_model(MODEL, inputs=INPUTS)
    function = response_function(model, list(ANALYZED), batch_size=40)
    responses = function(clips)
    reliance = stream_reliance(function, clips)
    speeds = speed_tuning(function, clips)
    document: dict[str, Any] = {"layers": {}}
    for layer in ANALYZED:
        chosen = selectivity(responses[layer], labels, 10, config=PermutationConfig(permutations=200))
        rel, speed = reliance[layer], speeds[layer]
        document["layers"][layer] = [{
            "channel": c,
            "selectivity": float(chosen.index[c]),
            "top_class": int(chosen.top_classes[c, 0]),
            "label": chosen.labels[c],
            "stream_reliance": {name: float(share[c]) for name, share in rel.reliance.items()},
            "reliance_label": rel.labels[c],
            "class_mean": np.nan_to_num(chosen.class_mean[:, c]).tolist(),
            "class_max": np.nan_to_num(chosen.class_max[:, c]).tolist(),
            "speed": {"speeds": list(speed.speeds), "curve": speed.curve[:, c].tolist(),
                      "preferred": float(speed.preferred[c])},
            "sparseness": float(chosen.sparseness[c]),
        } for c in range(responses[layer].shape[1])]
    return document


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    root = tmp_path_factory.mktemp("atlas-source")
    batch = SyntheticActions().batch(CLIPS, seed=1)
    clips = {"rgb": batch.rgb, "flow": batch.flow}
    settings = [(1.0, g) for g in GAMMAS]
    options = pb.MaximizeOptions(iterations=16, seed=0)
    with Client(None, store=root / "store") as client:
        info = client.import_model(MODEL, name="two_stream_small", inputs=INPUTS)
        model_info, layers = client.get_model(info.id)
        made = client.record(info.id, clips, batch.label, layers=list(ANALYZED), top_k=3, name="synthetic")
        recording = client.get_recording(made.id)
        paths = []
        for folder, wanted in (("fusion", objectives("conv_fusion", list(FUSION_UNITS), "channel")),
                               ("logits", objectives("logits", list(LOGIT_UNITS), "logit"))):
            (root / "results" / folder).mkdir(parents=True)
            client.maximize(info.id, wanted, settings, options=options).save_npz(root / "results" / folder / "result.npz")
            paths.append(root / "results" / folder / "result.npz")
    return Source(model_info, layers, [load_result(p) for p in paths], root / "results", recording,
                  _analysis(clips, np.asarray(batch.label)), clips, root / "store")


DEMO_LOGITS = (0, 5)
DEMO_FUSION = (0, 1, 2)
DEMO_GAMMAS = (0.0, 10.0)


@pytest.fixture(scope="session")
def demo_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The atlas `kinetoscope demo` writes, made by the demo's own function with fewer units, steps and clips.

    About 30 s on two loaded cores; returns its index.html.
    """
    from kinetoscope.client.atlas.demo import DemoSettings, run_demo  # noqa: PLC0415

    out = tmp_path_factory.mktemp("demo")
    settings = DemoSettings(gammas=DEMO_GAMMAS, logits=DEMO_LOGITS, fusion_units=DEMO_FUSION, iterations=16,
                            clips_per_class=4, permutations=200)
    with Client(None, store=out / "store") as client:
        return run_demo(client, out, settings).atlas


@pytest.fixture(scope="session")
def atlas(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full atlas (recording, analysis and clips), written once; returns its index.html."""
    from kinetoscope.client.atlas import write_atlas  # noqa: PLC0415

    out = tmp_path_factory.mktemp("atlas") / "site"
    return write_atlas(out, source.model_info, source.layers, source.results, source.recording, source.analysis,
                       clips=source.clips)
