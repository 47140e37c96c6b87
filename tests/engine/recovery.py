"""What "a class's colour and direction recovered" means on the zoo's trained models, per optimized sample.

The criteria of test_trained_two_stream.py and test_trained_video3d.py, as functions that
score a whole `MaximizeResult` of one logit per class, so that parameterizations can be
compared on them (test_trained_fourier.py, bench/parameterization.py).
"""

from __future__ import annotations

import numpy as np

from kinetoscope.model_zoo.synthetic import default_classes

from .test_trained_two_stream import _cosine, _dominant_direction, _fields
from .test_trained_video3d import global_lucas_kanade

CLASSES = default_classes()
TWO_STREAM_INPUTS = ["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"]


def colour_hits(result, settings: range) -> list[bool]:
    """Per class × setting: the mean colour of the optimized appearance points the class's colour's way."""
    hits = []
    for c, spec in enumerate(CLASSES):
        colour = np.array(spec.colour, float) - np.mean(spec.colour)
        for s in settings:
            rgb = result.results[c][s].inputs["rgb"].reshape(3, -1).mean(1)
            hits.append(_cosine(rgb - rgb.mean(), colour) >= 0.5)
    return hits


def flow_direction_hits(result, settings: range) -> list[bool]:
    """Per class that moves one way × setting: the strongest optimized flow moves the class's way."""
    return [_cosine(_dominant_direction(_fields(result.results[c][s])), np.array(spec.direction)) >= 0.7
            for c, spec in enumerate(CLASSES) if spec.motion != "oscillate" for s in settings]


def clip_direction_hits(result, settings: range) -> list[bool]:
    """Per class that moves one way × setting: the optimized 3D clip moves the class's way (Lucas–Kanade)."""
    return [_cosine(global_lucas_kanade(result.results[c][s].inputs["video"]), np.array(spec.direction)) >= 0.7
            for c, spec in enumerate(CLASSES) if spec.motion != "oscillate" for s in settings]
