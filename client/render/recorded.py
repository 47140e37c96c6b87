"""Turn a recording (and optionally the clips it was made from) into the gallery's per-unit column.

The recording stores which clips excited each channel most and each channel's maximum
per class; the clips themselves stay with the user, so the top-clip thumbnails appear
only when the clips file is given too (paper, Fig. 10 and 11).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..types import Recording
from .result import Result


def gallery_recording(recording: Recording, result: Result, clips: Mapping[str, np.ndarray] | None = None,
                      class_names: list[str] | None = None, top: int = 3) -> dict:
    """The `recording` mapping `render_result` takes, for the units of one result.

    A unit is matched to the recording by the tensor name and channel it maximized;
    units that are a sum of terms, or that come from a file without targets, get no entry.
    """
    entries = {}
    for u, unit in enumerate(result.units):
        t = result.target(u)
        if t is None or t.layer not in recording.layers:
            continue
        layer, channel = recording.layers[t.layer], t.channel
        if not 0 <= channel < layer.channels:
            continue
        order = layer.top_index[channel][:top]
        entry = {
            "class_max": np.nan_to_num(layer.per_class_max[channel], nan=0.0).tolist(),
            "top_labels": [f"{clip_id} ({value:.3g})" for clip_id, value in zip(layer.top_ids[channel][:top], layer.top_values[channel][:top])],
        }
        if clips is not None:
            entry["top_clips"] = [{name: np.asarray(array[int(i)]) for name, array in clips.items()} for i in order if int(i) >= 0]
        entries[unit] = entry
    mapping = {"units": entries}
    if class_names:
        mapping["class_names"] = list(class_names)
    return mapping
