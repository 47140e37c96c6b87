"""Activation maximization on the zoo's trained 3D ConvNet: the optimized clip moves its class's way.

The 3D model sees only RGB clips, so a class's motion has to appear in the optimized
video itself. One displacement per clip is estimated by Lucas–Kanade over the whole
clip (every pixel, frame pair and colour channel in one least-squares system), which
finds the direction of every real synthetic clip; the test asks it of the optimized ones.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kinetoscope.model_zoo.synthetic import SyntheticActions, default_classes
from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize
from kinetoscope.server.importer import import_model

import kinetoscope.model_zoo as zoo

MODEL = Path(zoo.__file__).parent / "trained" / "video3d_small.onnx"
CLASSES = default_classes()
GAMMAS = (0.0, 1.0)
SEEDS = (0, 1, 2)


def global_lucas_kanade(video: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(dx, dy) in pixels/frame of a [3, T, H, W] clip: one translation fitted to all of it."""
    frames = video.transpose(1, 0, 2, 3).astype(np.float64)
    frames = np.stack([[cv2.GaussianBlur(channel, (0, 0), sigma) for channel in frame] for frame in frames])
    normal, rhs = np.zeros((2, 2)), np.zeros(2)
    for before, after in zip(frames[:-1], frames[1:]):
        middle = (before + after) / 2
        gx, gy, gt = np.gradient(middle, axis=2), np.gradient(middle, axis=1), after - before
        normal += [[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]]
        rhs -= [np.sum(gx * gt), np.sum(gy * gt)]
    return np.linalg.solve(normal, rhs)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@pytest.fixture(scope="module")
def model():
    return import_model(MODEL)


@pytest.fixture(scope="module")
def runs(model):
    logits = model.output_names[0]
    settings = [Setting(kappa=1.0, gamma=g) for g in GAMMAS]
    return {seed: maximize(model, [Logit(logits, c) for c in range(len(CLASSES))], settings, MaximizeConfig(seed=seed))
            for seed in SEEDS}


def test_the_estimate_finds_the_direction_of_real_clips() -> None:
    data = SyntheticActions()
    hits = []
    for index in range(60):
        clip = data.clip(index)
        spec = CLASSES[clip.label]
        if spec.motion != "oscillate":
            hits.append(_cosine(global_lucas_kanade(clip.video), np.array(spec.direction)) >= 0.7)
    assert np.mean(hits) >= 0.95, f"{np.mean(hits):.0%}"


def test_optimized_clip_moves_the_class_direction(runs) -> None:
    hits = {gamma: [] for gamma in GAMMAS}
    for result in runs.values():
        for c, spec in enumerate(CLASSES):
            if spec.motion == "oscillate":
                continue  # no net direction
            for s, gamma in enumerate(GAMMAS):
                shift = global_lucas_kanade(result.results[c][s].inputs["video"])
                hits[gamma].append(_cosine(shift, np.array(spec.direction)) >= 0.7)
    every = [hit for values in hits.values() for hit in values]
    assert np.mean(every) >= 0.85, {g: f"{np.mean(v):.0%}" for g, v in hits.items()}
