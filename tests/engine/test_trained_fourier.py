"""The Fourier parameterization on the zoo's trained models: class colours and directions recovered at
least as often as with the paper's pixels, over seeds 0–2 and γ ∈ {0, 1}."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kinetoscope.model_zoo as zoo
from kinetoscope.server.engine import Logit, MaximizeConfig, Setting, maximize
from kinetoscope.server.importer import import_model

from .recovery import CLASSES, TWO_STREAM_INPUTS, clip_direction_hits, colour_hits, flow_direction_hits

TRAINED = Path(zoo.__file__).parent / "trained"
SEEDS = (0, 1, 2)
SETTINGS = [Setting(kappa=1.0, gamma=0.0), Setting(kappa=1.0, gamma=1.0)]

pytestmark = pytest.mark.slow  # 2 models × 3 seeds × 2 parameterizations × 20 samples × 256 steps


def _runs(model, param: str) -> list:
    logits = model.output_names[0]
    return [maximize(model, [Logit(logits, c) for c in range(len(CLASSES))], SETTINGS, MaximizeConfig(seed=seed, param=param))
            for seed in SEEDS]


def _rate(runs: list, score) -> float:
    return float(np.mean([hit for result in runs for hit in score(result, range(len(SETTINGS)))]))


def test_two_stream_colours_and_directions() -> None:
    model = import_model(TRAINED / "two_stream_small.onnx", inputs=TWO_STREAM_INPUTS)
    pixel, fourier = _runs(model, "pixel"), _runs(model, "fourier")
    for score in (colour_hits, flow_direction_hits):
        rates = {"pixel": _rate(pixel, score), "fourier": _rate(fourier, score)}
        assert rates["fourier"] >= rates["pixel"], (score.__name__, rates)
        assert rates["fourier"] >= 0.9, (score.__name__, rates)


def test_3d_clip_directions() -> None:
    model = import_model(TRAINED / "video3d_small.onnx")
    rates = {param: _rate(_runs(model, param), clip_direction_hits) for param in ("pixel", "fourier")}
    assert rates["fourier"] >= rates["pixel"], rates
    assert rates["fourier"] >= 0.85, rates
