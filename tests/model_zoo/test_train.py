"""The small trained models: training works, the shipped ONNX files classify, and they are what the trainer makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from kinetoscope.model_zoo.synthetic import SyntheticActions
from kinetoscope.model_zoo.train import RECIPES, TRAINED_DIR, train

SHIPPED = {name: TRAINED_DIR / f"{name}.onnx" for name in RECIPES}
EVAL_DATASET_SEED = 7  # a dataset seed the recipes (seed 0) never render


def _run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], feeds)[0]


def _initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_reduced_two_stream_training_learns() -> None:
    """3 epochs × 1000 clips of the 10 classes: ≥ 75 % held out, where chance is 10 %."""
    result = train("two_stream_small", epochs=3, samples_per_epoch=1000, seed=1, held_out=300)
    assert result.accuracy >= 0.75, result.accuracies
    assert result.losses[-1] < result.losses[0]


def test_reduced_3d_training_separates_colour_and_direction(tmp_path: Path) -> None:
    """The fusion quadruple (red/blue × right/left) from RGB clips alone: ≥ 70 % held out, chance 25 %."""
    result = train(
        "video3d_small", epochs=3, samples_per_epoch=400, seed=1, classes=4, held_out=200,
        out_dir=tmp_path, checkpoint_epochs=(1,),
    )
    assert result.accuracy >= 0.70, result.accuracies
    assert sorted(result.checkpoints) == [1, 3]
    assert all(path.exists() for path in result.checkpoints.values())
    names = json.loads({p.key: p.value for p in onnx.load(str(result.final_path)).metadata_props}["class_names"])
    assert names == ["red_disc_right", "red_disc_left", "blue_disc_right", "blue_disc_left"]


def test_shipped_two_stream_classifies_held_out_clips() -> None:
    data = SyntheticActions(seed=EVAL_DATASET_SEED)
    sample = data.batch(500, seed=3)
    logits = _run(SHIPPED["two_stream_small"], {"rgb": sample.rgb, "flow": sample.flow})
    assert (logits.argmax(1) == sample.label).mean() >= 0.95


def test_shipped_3d_classifies_held_out_clips() -> None:
    data = SyntheticActions(seed=EVAL_DATASET_SEED)
    sample = data.video_batch(500, seed=3)
    logits = _run(SHIPPED["video3d_small"], {"video": sample.video})
    assert (logits.argmax(1) == sample.label).mean() >= 0.95


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_files_carry_metadata_and_are_small(name: str) -> None:
    paths = [SHIPPED[name], *(TRAINED_DIR / f"{name}.epoch{k}.onnx" for k in RECIPES[name].checkpoint_epochs)]
    for path in paths:
        assert path.stat().st_size < 1_000_000
        model = onnx.load(str(path))
        metadata = {p.key: p.value for p in model.metadata_props}
        assert json.loads(metadata["class_names"]) == SyntheticActions().class_names
        assert json.loads(metadata["flow_scale"]) == 16.0
        assert json.loads(metadata["value_range"]) == [-128.0, 127.0]
        assert "BatchNormalization" in {node.op_type for node in model.graph.node}


@pytest.mark.slow
def test_full_recipe_reproduces_shipped_weights(tmp_path: Path) -> None:
    """Retrain every recipe; each exported file (checkpoints included) matches the shipped one."""
    for name, recipe in RECIPES.items():
        result = train(name, out_dir=tmp_path, **vars(recipe))
        assert result.accuracy >= 0.95
        for path in result.checkpoints.values():
            fresh, shipped = _initializers(path), _initializers(TRAINED_DIR / path.name)
            assert fresh.keys() == shipped.keys()
            for key in fresh:
                np.testing.assert_allclose(fresh[key], shipped[key], rtol=0, atol=1e-5, err_msg=f"{path.name}: {key}")
