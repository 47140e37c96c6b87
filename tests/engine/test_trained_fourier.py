"""The Fourier parameterization on the zoo's trained models: class colours and directions recovered at
least as often as with the paper's pixels, over seeds 0–2 and γ ∈ {0, 1}, where both have climbed as far."""

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

pytestmark = pytest.mark.slow  # 2 models × 3 seeds × 2 parameterizations × 20 samples × 256 steps, and 1024 for one


def _runs(model, param: str, iterations: int = MaximizeConfig().iterations) -> list:
    logits = model.output_names[0]
    return [maximize(model, [Logit(logits, c) for c in range(len(CLASSES))], SETTINGS,
                     MaximizeConfig(seed=seed, param=param, iterations=iterations)) for seed in SEEDS]


def _rate(runs: list, score, settings: range = range(len(SETTINGS))) -> float:
    return float(np.mean([hit for result in runs for hit in score(result, settings)]))


@pytest.fixture(scope="module")
def two_stream() -> dict[str, list]:
    model = import_model(TRAINED / "two_stream_small.onnx", inputs=TWO_STREAM_INPUTS)
    return {param: _runs(model, param) for param in ("pixel", "fourier")}


def test_two_stream_colours(two_stream) -> None:
    rates = {param: _rate(runs, colour_hits) for param, runs in two_stream.items()}
    assert rates["fourier"] >= rates["pixel"] and rates["fourier"] >= 0.9, rates


CONVERGED = 1024
"""Steps at which both parameterizations reach the same mean logit at γ = 0 (within 1 % on these seeds)."""


@pytest.fixture(scope="module")
def two_stream_converged() -> dict[str, list]:
    model = import_model(TRAINED / "two_stream_small.onnx", inputs=TWO_STREAM_INPUTS)
    return {param: _runs(model, param, CONVERGED) for param in ("pixel", "fourier")}


def _mean_activation(runs: list, setting: int) -> float:
    return float(np.mean([row[setting].activation for result in runs for row in result.results]))


def test_two_stream_flow_directions_at_equal_activation(two_stream_converged) -> None:
    """Where both reach the same logit, the spectrum recovers the class's direction at least as often as pixels.

    At the default 256 steps and γ = 0 pixels score more (27 of 27 against 21), but only because they stop short:
    the logit is still climbing (mean 22 against the spectrum's 25; both reach 43 at 1024 steps and 46 at 2048).
    Run on, pixels too end with the flow of most fields against the class (16 of 27 at 1024 steps, 18 at 2048),
    while the spectrum's count stays 21 of 27 at 256, 1024 and 2048 steps; at 4096, where neither climbs any
    more (46.7 and 46.9), both read 18. Comparing the two where they have climbed as far compares the
    parameterizations, not their stopping points.
    """
    runs = two_stream_converged
    pixel, fourier = (_mean_activation(runs[param], 0) for param in ("pixel", "fourier"))
    assert fourier == pytest.approx(pixel, rel=0.02), (pixel, fourier)  # the same height reached
    rates = {param: _rate(found, flow_direction_hits) for param, found in runs.items()}
    assert rates["fourier"] >= rates["pixel"] and rates["fourier"] >= 0.85, rates


def test_two_stream_flow_directions_at_the_default_steps(two_stream) -> None:
    """At 256 steps: with γ > 0 (temporal smoothness asked for) both recover every direction; at γ = 0 the spectrum
    has climbed further, which is what costs it directions against the still-climbing pixels (above)."""
    assert SETTINGS[1].gamma > 0
    rates = {param: _rate(runs, flow_direction_hits, range(1, 2)) for param, runs in two_stream.items()}
    assert rates["fourier"] >= rates["pixel"] and rates["fourier"] >= 0.9, rates
    assert _mean_activation(two_stream["fourier"], 0) > _mean_activation(two_stream["pixel"], 0)


def test_3d_clip_directions() -> None:
    model = import_model(TRAINED / "video3d_small.onnx")
    rates = {param: _rate(_runs(model, param), clip_direction_hits) for param in ("pixel", "fourier")}
    assert rates["fourier"] >= rates["pixel"], rates
    assert rates["fourier"] >= 0.85, rates
