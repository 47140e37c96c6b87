"""Activation maximization on the zoo's trained synthetic two-stream model, whose classes are known.

Each class has a colour and a motion; maximizing its logit should give an appearance of
that colour and optical flow that moves its way. Measured over seeds 0, 1, 2 and
γ ∈ {0, 1} (γ = 10 for the slowness check).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kinetoscope.model_zoo.synthetic import SyntheticActions, default_classes
from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize
from kinetoscope.server.importer import import_model

import kinetoscope.model_zoo as zoo

MODEL = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
CLASSES = default_classes()
GAMMAS = (0.0, 1.0, 10.0)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def model():
    return import_model(MODEL, inputs=["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"])


@pytest.fixture(scope="module")
def runs(model):
    settings = [Setting(kappa=1.0, gamma=g) for g in GAMMAS]
    return {seed: maximize(model, [Logit("logits", c) for c in range(len(CLASSES))], settings, MaximizeConfig(seed=seed))
            for seed in SEEDS}


def _fields(result) -> np.ndarray:
    """[L, 2, H, W] flow fields (x then y) of an optimized stacked-flow input."""
    return result.inputs["flow"].reshape(10, 2, 32, 32)


def _dominant_direction(fields: np.ndarray) -> np.ndarray:
    """Mean flow vector over the 10 % strongest flow vectors: the motion a viewer sees."""
    vectors = fields.transpose(0, 2, 3, 1).reshape(-1, 2)
    magnitude = np.linalg.norm(vectors, axis=1)
    return vectors[magnitude >= np.quantile(magnitude, 0.9)].mean(0)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def test_optimized_flow_moves_the_class_direction(runs) -> None:
    hits = {0: [], 1: []}
    for result in runs.values():
        for c, spec in enumerate(CLASSES):
            if spec.motion == "oscillate":
                continue  # no net direction
            for s in (0, 1):
                hits[s].append(_cosine(_dominant_direction(_fields(result.results[c][s])), np.array(spec.direction)) >= 0.7)
    both = hits[0] + hits[1]
    assert np.mean(both) >= 0.9, f"direction recovered for {np.mean(both):.0%} of classes × seeds × γ"


def test_optimized_appearance_has_the_class_colour(runs) -> None:
    hits = []
    for result in runs.values():
        for c, spec in enumerate(CLASSES):
            colour = np.array(spec.colour, float) - np.mean(spec.colour)
            for s in (0, 1):
                rgb = result.results[c][s].inputs["rgb"].reshape(3, -1).mean(1)
                hits.append(_cosine(rgb - rgb.mean(), colour) >= 0.5)
    assert np.mean(hits) >= 0.9, f"colour recovered for {np.mean(hits):.0%}"


def test_direction_and_colour_together(runs) -> None:
    """Both at once, for the classes that move one way: the criterion as a viewer reads a row."""
    hits = []
    for result in runs.values():
        for c, spec in enumerate(CLASSES):
            if spec.motion == "oscillate":
                continue
            colour = np.array(spec.colour, float) - np.mean(spec.colour)
            for s in (0, 1):
                rgb = result.results[c][s].inputs["rgb"].reshape(3, -1).mean(1)
                direction = _dominant_direction(_fields(result.results[c][s]))
                hits.append(_cosine(rgb - rgb.mean(), colour) >= 0.5 and _cosine(direction, np.array(spec.direction)) >= 0.7)
    assert np.mean(hits) >= 0.9, f"direction and colour recovered together for {np.mean(hits):.0%}"


def test_raising_gamma_lowers_temporal_variation(runs) -> None:
    for result in runs.values():
        for row in result.results:
            variation = [float(np.sum(np.diff(_fields(r), axis=0) ** 2)) for r in row]
            assert variation[0] > variation[1] > variation[2], variation


def test_faster_class_gets_the_faster_motion(runs) -> None:
    slow, fast = (next(i for i, c in enumerate(CLASSES) if c.name == n) for n in ("green_square_up_slow", "green_square_up_fast"))
    for result in runs.values():
        for s in (0, 1):
            speed = [np.quantile(np.linalg.norm(_fields(result.results[c][s]), axis=1), 0.9) for c in (slow, fast)]
            assert speed[1] > speed[0], speed


def test_optimized_logits_exceed_every_real_clip(model, runs) -> None:
    data = SyntheticActions().batch(500, seed=5)
    with torch.no_grad():
        real_max = model.module(torch.from_numpy(data.rgb), torch.from_numpy(data.flow)).max(0).values.numpy()
    above = [result.results[c][s].activation > real_max[c] for result in runs.values() for c in range(len(CLASSES)) for s in (0, 1)]
    assert np.mean(above) >= 0.9, f"{np.mean(above):.0%} of optimized units exceed the real maximum"
