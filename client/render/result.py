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

from kinetoscope.common import INPUT_KINDS, InputSpec, LayoutError, infer_kind, infer_layout, sample_layout

from ..types import Target, targets_from_text

RESERVED_KEYS = frozenset({
    "units", "gammas", "kappas", "activation", "input_names", "input_kinds",
    "input_layouts", "class_names", "optimized", "unit_targets",
})


class ResultError(ValueError):
    """A result file that cannot be displayed; the message says what is wrong."""


@dataclass(frozen=True)
class Result:
    """The contents of one result file, with every optional key filled in."""

    inputs: tuple[InputSpec, ...]
    """Per graph input: name, kind, and the shape and layout of one sample (no batch axis), e.g. CHW or THWC."""
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


def kind_from_shape(shape: tuple[int, ...], layout: str) -> str:
    """The kind of a sample whose file does not say, when its channel count fits exactly one (see `infer_kind`)."""
    letters = sample_layout(layout)
    kind = infer_kind(shape[letters.index("C")], "T" in letters, exact=True)
    if kind is None:
        raise ResultError(f"cannot tell the kind of an input of shape {shape} ({letters}); pass input_kinds")
    return kind.value


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
        try:
            layout = sample_layout(layout) if layout else infer_layout(sample_shape)
        except LayoutError as exc:
            raise ResultError(f"input {name!r}: {exc}") from None
        if len(layout) != len(sample_shape):
            raise ResultError(f"input {name!r}: layout {layout} does not fit a sample of shape {sample_shape}")
        kind = kind or kind_from_shape(sample_shape, layout)
        if kind not in INPUT_KINDS:
            raise ResultError(f"input {name!r} has kind {kind!r}; expected one of {', '.join(INPUT_KINDS)}")
        specs.append(InputSpec(name, sample_shape, kind, layout=layout))
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
