"""Evolution across checkpoints from result files: the numbers equal the engine's, on the CLI and in the atlas.

Two checkpoints of the zoo's two-stream model (after epoch 1, and final) are maximized
through the client (two logits and a conv_fusion channel, γ ∈ {0, 1}, 16 steps) into
one results folder each, as `kinetoscope maximize --out` writes them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kinetoscope.client.atlas.evolution import (EvolutionError, checkpoint_evolution, evolution_document,
                                                load_checkpoints, temporal_steps)
from kinetoscope.client.client import Client
from kinetoscope.client.render.result import load_result
from kinetoscope.client.units import objectives
from kinetoscope.server.engine.analysis.evolution import evolution, temporal_variation
from kinetoscope.server.importer import InputSpec
from kinetoscope.v1 import kinetoscope_pb2 as pb

from .conftest import INPUTS, MODEL

CHECKPOINTS = ("two_stream_small.epoch1", "two_stream_small")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    made = []
    with Client(None, store=root / "store") as client:
        for name in CHECKPOINTS:
            info = client.import_model(MODEL.parent / f"{name}.onnx", name=name, inputs=INPUTS)
            wanted = objectives("logits", [4, 5], "logit") + objectives("conv_fusion", [0], "channel")
            result = client.maximize(info.id, wanted, [(1.0, 0.0), (1.0, 1.0)],
                                     options=pb.MaximizeOptions(iterations=16, seed=0))
            (root / name).mkdir()
            result.save_npz(root / name / "result.npz")
            made.append(root / name)
    return made


def _engine(folders: list[Path]) -> dict:
    """The engine's evolution on the same arrays, units in the files' order (logits 4, 5, then conv_fusion 0)."""
    results = [load_result(folder / "result.npz") for folder in folders]
    specs = [InputSpec(s.name, (1, *results[0].arrays[s.name].shape[2:]), s.kind, (-128.0, 127.0), "N" + s.layout)
             for s in results[0].inputs]
    return evolution([dict(r.arrays) for r in results], specs, CHECKPOINTS)


def test_numbers_equal_the_engines(folders) -> None:
    found = checkpoint_evolution(load_checkpoints(folders))
    engine = _engine(folders)
    assert list(found) == ["conv_fusion", "logits"] and found["logits"].channels == (4, 5)
    assert found["logits"].settings == ((1.0, 0.0), (1.0, 1.0)) and found["logits"].checkpoints == CHECKPOINTS
    for name in ("rgb", "flow"):
        np.testing.assert_allclose(found["logits"].inputs[name].change, engine[name].change[:, :2], rtol=1e-9)
        np.testing.assert_allclose(found["conv_fusion"].inputs[name].change, engine[name].change[:, 2:], rtol=1e-9)
    np.testing.assert_allclose(found["logits"].inputs["flow"].variation, engine["flow"].variation[:, :2], rtol=1e-9)
    assert np.all(np.isnan(found["logits"].inputs["rgb"].variation))  # one frame: no time
    flow = found["logits"].inputs["flow"]
    assert np.all((flow.change > 0) & (flow.change < 2)) and np.all((flow.variation > 0) & (flow.variation < 4))
    # the temporal regularizer (γ = 1) leaves less variation in time than γ = 0, at each checkpoint and unit
    assert np.all(flow.variation[:, :, 1] < flow.variation[:, :, 0]), flow.variation


def test_video_steps_are_frames_in_either_layout() -> None:
    rng = np.random.default_rng(0)
    cthw = rng.standard_normal((2, 3, 3, 5, 4, 4))  # [U, S, C, T, H, W]
    spec = InputSpec("video", (1, 3, 5, 4, 4), "video", (-128.0, 127.0), "NCTHW")
    expected = temporal_variation(cthw, spec)
    for layout, array in (("CTHW", cthw), ("THWC", np.transpose(cthw, (0, 1, 3, 4, 5, 2)))):
        steps = temporal_steps(array, "video", layout)
        assert steps.shape == (2, 3, 5, 48)
        np.testing.assert_allclose(np.mean(np.sum(np.diff(steps, axis=2) ** 2, -1), -1)
                                   / np.mean(np.sum(steps**2, -1), -1), expected, rtol=1e-12)
    assert temporal_steps(np.zeros((1, 1, 3, 4, 4)), "image", "CHW") is None


def test_a_sweep_folder_over_checkpoints_and_mistakes(folders, tmp_path) -> None:
    sweep = tmp_path / "sweep"
    for folder in reversed(folders):  # the manifest's order, not the folders' names, is the training order
        shutil.copytree(folder, sweep / folder.name / "logits", ignore=shutil.ignore_patterns("store"))
    (sweep / "manifest.json").write_text(json.dumps({"models": {name: f"id{k}" for k, name in enumerate(CHECKPOINTS)}}))
    found = checkpoint_evolution(load_checkpoints([sweep]))
    direct = checkpoint_evolution(load_checkpoints(folders))
    np.testing.assert_array_equal(found["logits"].inputs["flow"].change, direct["logits"].inputs["flow"].change)
    with pytest.raises(EvolutionError, match="of 1 model"):
        load_checkpoints([folders[0]])
    with pytest.raises(EvolutionError, match="does not exist"):
        load_checkpoints([folders[0], tmp_path / "nowhere"])


def test_cli_prints_the_document(folders, tmp_path) -> None:
    from tests.cli.console import kinetoscope  # noqa: PLC0415

    done = kinetoscope("analyze", "--evolution", *map(str, folders), "--json", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    expected = evolution_document(checkpoint_evolution(load_checkpoints(folders)))
    assert document["checkpoints"] == list(CHECKPOINTS) and document["layers"]["logits"]["channels"] == [4, 5]
    flow = document["layers"]["logits"]["inputs"]["flow"]
    np.testing.assert_allclose(flow["change"], expected["layers"]["logits"]["inputs"]["flow"]["change"], rtol=1e-12)
    assert document["layers"]["logits"]["inputs"]["rgb"]["variation"][0] == [[None, None], [None, None]]
    table = kinetoscope("analyze", "--evolution", *map(str, folders), home=tmp_path / "home")
    assert table.returncode == 0 and "logits flow γ=1 (2 units): change" in table.stdout, table.stderr
    missing = kinetoscope("analyze", "--evolution", str(folders[0]), home=tmp_path / "home")
    assert missing.returncode == 2 and missing.stderr.startswith("kinetoscope analyze: ") and "Traceback" not in missing.stderr


def test_atlas_model_page_shows_the_curves(folders, source, tmp_path) -> None:
    from PIL import Image  # noqa: PLC0415

    from kinetoscope.client.atlas import write_atlas  # noqa: PLC0415

    found = checkpoint_evolution(load_checkpoints(folders))
    index = write_atlas(tmp_path / "site", source.model_info, source.layers, [load_result(folders[-1] / "result.npz")],
                        evolution=found)
    page = index.read_text(encoding="utf-8")
    assert '<img src="media/evolution.png"' in page and "two_stream_small.epoch1 → two_stream_small" in page
    with Image.open(tmp_path / "site" / "media" / "evolution.png") as chart:
        pixels = np.asarray(chart.convert("RGB"), np.int64)
    assert chart.size == (1000, 360) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # curves, not a blank
