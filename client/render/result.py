"""Reading `result.npz`, the file a maximization writes, into arrays ready to display.

The file holds, per graph input, an array [U, S, *input shape without batch] plus
`units`, `gammas`, `kappas`, `activation` [U, S] and, optionally, `input_names`,
`input_kinds`, `input_layouts`, `class_names`, `optimized` [U, S, n_inputs] and
`unit_targets` [U] (each unit's objective terms as JSON, see `types.targets_to_text`).
Older or hand-made files may lack the optional keys, so kinds and layouts are inferred;
`units` are display labels only and are never parsed for what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..types import Target, targets_from_text

KINDS = ("image", "stacked_flow", "stacked_flow_planar", "video", "flow_video")
SEQUENCE_KINDS = frozenset({"stacked_flow", "stacked_flow_planar", "video", "flow_video"})
FLOW_KINDS = frozenset({"stacked_flow", "stacked_flow_planar", "flow_video"})
RESERVED_KEYS = frozenset({
    "units", "gammas", "kappas", "activation", "input_names", "input_kinds",
    "input_layouts", "class_names", "optimized", "unit_targets",
})


class ResultError(ValueError):
    """A result file that cannot be displayed; the message says what is wrong."""


@dataclass(frozen=True)
class InputSpec:
    """One graph input: its name, kind and per-sample layout (batch axis dropped)."""

    name: str
    kind: str
    layout: str  # e.g. "CHW", "HWC", "CTHW", "THWC"


@dataclass(frozen=True)
class Result:
    """The contents of one result file, with every optional key filled in."""

    inputs: tuple[InputSpec, ...]
    arrays: dict[str, np.ndarray]  # name -> [U, S, *sample shape]
    units: tuple[str, ...]
    gammas: np.ndarray  # [S]
    kappas: np.ndarray  # [S]
    activation: np.ndarray  # [U, S]
    optimized: np.ndarray  # [U, S, n_inputs] bool
    class_names: tuple[str, ...] | None = None
    targets: tuple[tuple[Target, ...], ...] = ()
    """Per unit, its objective's terms; empty for files written before results carried them."""

    @property
    def n_units(self) -> int:
        return len(self.units)

    def target(self, unit: int) -> Target | None:
        """The unit's single term (kind, tensor name, channel), or None for a sum of terms or a file without targets."""
        terms = self.targets[unit] if self.targets else ()
        return terms[0] if len(terms) == 1 else None

    @property
    def n_settings(self) -> int:
        return len(self.gammas)


def sample_layout(layout: str) -> str:
    """Drops the batch axis N and spells depth D as time T (ONNX 3D convs use NCDHW)."""
    letters = layout.strip().upper().replace("D", "T")
    if letters.startswith("N"):
        letters = letters[1:]
    if sorted(letters) not in (sorted("CHW"), sorted("CTHW")):
        raise ResultError(f"layout {layout!r} is not one of NCHW, NHWC, NCTHW, NTHWC (or another order of those axes)")
    return letters


def infer_layout(shape: tuple[int, ...]) -> str:
    """Guesses the per-sample layout: the channel axis is the smaller of the first and last axes."""
    if len(shape) not in (3, 4):
        raise ResultError(f"an input sample of shape {shape} is neither [C,H,W] nor [C,T,H,W]; pass input_layouts")
    channel_first = shape[0] <= shape[-1]
    if len(shape) == 3:
        return "CHW" if channel_first else "HWC"
    return "CTHW" if channel_first else "THWC"


def to_canonical(sample: np.ndarray, layout: str) -> np.ndarray:
    """Transposes one sample to CHW or CTHW, the order display code works in."""
    target = "CHW" if len(layout) == 3 else "CTHW"
    if sample.ndim != len(layout):
        raise ResultError(f"array of shape {sample.shape} does not match layout {layout}")
    return np.transpose(sample, [layout.index(axis) for axis in target])


def infer_kind(shape: tuple[int, ...], layout: str) -> str:
    """The kind from the shape when the file does not say: 3 channels is RGB, 2 or an even count is flow."""
    channels = shape[layout.index("C")]
    if len(layout) == 3:
        if channels in (1, 3):
            return "image"
        if channels % 2 == 0:
            return "stacked_flow"
    else:
        if channels in (1, 3):
            return "video"
        if channels == 2:
            return "flow_video"
    raise ResultError(f"cannot tell the kind of an input of shape {shape} ({layout}); pass input_kinds")


def _strings(values: np.ndarray) -> tuple[str, ...]:
    return tuple(str(v) for v in np.asarray(values).reshape(-1))


def load_result(path: str | Path) -> Result:
    """Loads and checks a result file; raises ResultError naming the key that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"{path} does not exist; run `kinetoscope maximize ... --out DIR` first")
    with np.load(path, allow_pickle=False) as data:
        content = {key: data[key] for key in data.files}
    for key in ("units", "gammas", "kappas", "activation"):
        if key not in content:
            raise ResultError(f"{path} has no {key!r} array; is it a kinetoscope result.npz?")
    units = _strings(content["units"])
    gammas = np.asarray(content["gammas"], dtype=np.float64).reshape(-1)
    kappas = np.asarray(content["kappas"], dtype=np.float64).reshape(-1)
    if gammas.shape != kappas.shape:
        raise ResultError(f"gammas {gammas.shape} and kappas {kappas.shape} differ in length")
    n_units, n_settings = len(units), len(gammas)
    activation = np.asarray(content["activation"], dtype=np.float64)
    if activation.shape != (n_units, n_settings):
        raise ResultError(f"activation has shape {activation.shape}, expected {(n_units, n_settings)}")

    names = _strings(content["input_names"]) if "input_names" in content else tuple(
        key for key in content if key not in RESERVED_KEYS
    )
    if not names:
        raise ResultError(f"{path} holds no input arrays")
    kinds = _strings(content["input_kinds"]) if "input_kinds" in content else (None,) * len(names)
    layouts = _strings(content["input_layouts"]) if "input_layouts" in content else (None,) * len(names)
    if not len(kinds) == len(layouts) == len(names):
        raise ResultError("input_names, input_kinds and input_layouts differ in length")

    specs: list[InputSpec] = []
    arrays: dict[str, np.ndarray] = {}
    for name, kind, layout in zip(names, kinds, layouts):
        if name not in content:
            raise ResultError(f"input {name!r} is listed but has no array in {path}")
        array = np.asarray(content[name])
        if array.shape[:2] != (n_units, n_settings):
            raise ResultError(f"input {name!r} has shape {array.shape}; expected [{n_units}, {n_settings}, ...]")
        sample_shape = tuple(array.shape[2:])
        layout = sample_layout(layout) if layout else infer_layout(sample_shape)
        if len(layout) != len(sample_shape):
            raise ResultError(f"input {name!r}: layout {layout} does not fit a sample of shape {sample_shape}")
        kind = kind or infer_kind(sample_shape, layout)
        if kind not in KINDS:
            raise ResultError(f"input {name!r} has kind {kind!r}; expected one of {', '.join(KINDS)}")
        specs.append(InputSpec(name, kind, layout))
        arrays[name] = array

    if "optimized" in content:
        optimized = np.asarray(content["optimized"], dtype=bool)
        if optimized.shape != (n_units, n_settings, len(specs)):
            raise ResultError(f"optimized has shape {optimized.shape}, expected {(n_units, n_settings, len(specs))}")
    else:  # an input that does not feed the unit is stored as zeros
        optimized = np.stack([
            np.any(arrays[s.name].reshape(n_units, n_settings, -1) != 0, axis=-1) for s in specs
        ], axis=-1)
    class_names = _strings(content["class_names"]) if "class_names" in content else None
    targets = _targets(content["unit_targets"], n_units, path) if "unit_targets" in content else ()
    return Result(tuple(specs), arrays, units, gammas, kappas, activation, optimized, class_names, targets)


def _targets(values: np.ndarray, n_units: int, path: Path) -> tuple[tuple[Target, ...], ...]:
    texts = _strings(values)
    if len(texts) != n_units:
        raise ResultError(f"{path}: unit_targets has {len(texts)} entries for {n_units} units")
    try:
        return tuple(targets_from_text(text) for text in texts)
    except ValueError as exc:
        raise ResultError(f"{path}: {exc}") from None
