"""The sweep spec (SPEC.toml): read, checked all at once, each problem pointing at its line.

The format is documented by example in docs/sweep-example.toml.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..targets import TARGET_KINDS
from .errors import SpecError
from .files import digest

SPEC_KEYS = ("out", "iterations", "seed", "settings", "models", "jobs")
MODEL_KEYS = ("model", "file", "name", "inputs")
JOB_KEYS = ("layer", "units", "target", "batch")
SETTING_KEYS = ("kappa", "gamma")

_TABLE_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")



class _Placed:
    """A table that knows where its keys stand in the spec, so a problem found later still points at its line."""

    label: str
    places: dict[str, str]

    def at(self, key: str = "") -> str:
        """`SPEC:LINE: [[table]] #N key`, else the table's own place."""
        return self.places.get(key) or self.places.get("", self.label)


@dataclass(frozen=True)
class ModelEntry(_Placed):
    """One `[[models]]` table: a stored model (`model`) or an ONNX file imported on the fly (`file`)."""

    label: str
    model: str | None
    file: Path | None
    name: str | None
    inputs: tuple[str, ...]
    places: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class JobEntry(_Placed):
    """One `[[jobs]]` table: a layer and units, swept on every model."""

    label: str
    layer: str
    units: str
    target: str | None
    batch: int | None
    places: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    out: Path | None
    iterations: int | None
    seed: int
    settings: tuple[tuple[float, float], ...]
    models: tuple[ModelEntry, ...]
    jobs: tuple[JobEntry, ...]

    def params(self) -> dict[str, Any]:
        """What a result depends on besides model, layer, units and target."""
        return {"iterations": self.iterations, "seed": self.seed, "settings": [list(s) for s in self.settings]}

    def params_hash(self) -> str:
        return digest(json.dumps(self.params(), sort_keys=True))

    def out_dir(self) -> Path:
        """The spec's `out`, else out/<spec name> beside where the command runs (like `maximize --out`)."""
        return self.out if self.out is not None else Path("out") / self.path.stem


@dataclass(frozen=True)
class _Locator:
    """Finds the line of a key, so errors point into the spec (tomllib keeps no positions)."""

    path: Path
    lines: tuple[str, ...]

    def where(self, table: str | None, index: int | None = None, key: str | None = None) -> str:
        label = " ".join(filter(None, [f"[[{table}]] #{index + 1}" if table else "", key or ""]))
        line = self._line(table, index or 0, key)
        return f"{self.path}:{line}: {label}" if line else f"{self.path}: {label}"

    def _line(self, table: str | None, index: int, key: str | None) -> int | None:
        headers = [n for n, text in enumerate(self.lines) if _TABLE_HEADER.match(text)]
        if table is None:
            return self._key_line(key, 0, headers[0] if headers else len(self.lines)) if key else None
        mine = [n for n in headers if _TABLE_HEADER.match(self.lines[n]).groups()[:2] == ("[[", table)]
        if index >= len(mine):  # an inline array of tables: point at its key
            return self._key_line(table, 0, headers[0] if headers else len(self.lines))
        start = mine[index]
        end = next((n for n in headers if n > start), len(self.lines))
        return (self._key_line(key, start + 1, end) if key else None) or start + 1

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        return next((n + 1 for n in range(start, end) if pattern.match(self.lines[n])), None)


class _Reader:
    """Collects every problem of a spec, so one run reports them all."""

    def __init__(self, locator: _Locator) -> None:
        self.loc = locator
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def known_keys(self, table: dict, known: tuple[str, ...], name: str | None, index: int | None) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(self.loc.where(name, index, key), f"unknown key{hint} (known keys: {', '.join(known)})")

    def places(self, table: str, index: int, keys: Iterable[str]) -> dict[str, str]:
        return {"": self.loc.where(table, index), **{k: self.loc.where(table, index, k) for k in keys}}


def load_spec(path: str | Path) -> SweepSpec:
    """Reads and checks a spec file; raises SpecError listing every problem found."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path} is not a file; docs/sweep-example.toml shows the format")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, path, text)


def parse_spec(data: dict[str, Any], path: Path, text: str = "") -> SweepSpec:
    reader = _Reader(_Locator(path, tuple(text.splitlines())))
    reader.known_keys(data, SPEC_KEYS, None, None)
    out = data.get("out")
    if out is not None and not (isinstance(out, str) and out):
        reader.fail(reader.loc.where(None, key="out"), 'must be a folder path such as "sweeps/fig9"')
    iterations = _integer(reader, data, "iterations", minimum=1, maximum=2**31 - 1)
    seed = _integer(reader, data, "seed", minimum=0, maximum=2**63 - 1)
    settings = _settings(reader, data.get("settings", [{"kappa": 1.0, "gamma": 1.0}]))
    models = tuple(_model_entries(reader, data.get("models"), path.parent))
    jobs = tuple(_job_entries(reader, data.get("jobs")))
    if reader.problems:
        raise SpecError("\n".join(reader.problems))
    return SweepSpec(path, Path(out) if isinstance(out, str) else None, iterations, seed or 0, settings, models, jobs)


def _integer(reader: _Reader, data: dict, key: str, *, minimum: int, maximum: int) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum):
        reader.fail(reader.loc.where(None, key=key), f"must be a whole number from {minimum} to {maximum}, not {value!r}")
        return None
    return value


def _settings(reader: _Reader, raw: Any) -> tuple[tuple[float, float], ...]:
    where = reader.loc.where(None, key="settings")
    if not isinstance(raw, list) or not raw:
        reader.fail(where, "must be a list of tables like [{kappa = 1, gamma = 0}, {kappa = 1, gamma = 5}]")
        return ()
    settings = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            reader.fail(where, f"entry {n} must be a table like {{kappa = 1, gamma = 1}}, not {item!r}")
            continue
        for key in item:
            if key not in SETTING_KEYS:
                reader.fail(where, f"entry {n} has unknown key {key!r}; a setting has kappa and gamma (each default 1)")
        values = [item.get(key, 1.0) for key in SETTING_KEYS]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in values):
            reader.fail(where, f"entry {n}: kappa and gamma must be numbers ≥ 0, not {item!r}")
            continue
        settings.append((float(values[0]), float(values[1])))
    return tuple(settings)


def _tables(reader: _Reader, raw: Any, name: str, example: str) -> list[dict]:
    if raw is None:
        reader.fail(reader.loc.where(None, key=name), f"missing: add at least one [[{name}]] table with {example}")
        return []
    if not isinstance(raw, list) or not raw:
        reader.fail(reader.loc.where(None, key=name), f"must be one or more [[{name}]] tables with {example}")
        return []
    return raw


def _string(reader: _Reader, table: dict, key: str, where: str, *, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None and required:
        reader.fail(where, f"missing {key!r}")
    elif value is not None and not (isinstance(value, str) and value.strip()):
        reader.fail(where, f"must be a non-empty string, not {value!r}")
        return None
    return value


def _model_entries(reader: _Reader, raw: Any, spec_dir: Path) -> Iterable[ModelEntry]:
    for index, table in enumerate(_tables(reader, raw, "models", '`model = "ID or name"` or `file = "MODEL.onnx"`')):
        if not isinstance(table, dict):
            reader.fail(reader.loc.where("models", index), "must be a table")
            continue
        reader.known_keys(table, MODEL_KEYS, "models", index)
        places = reader.places("models", index, MODEL_KEYS)
        model = _string(reader, table, "model", places["model"])
        file = _string(reader, table, "file", places["file"])
        name = _string(reader, table, "name", places["name"])
        inputs = table.get("inputs", [])
        if ("model" in table) == ("file" in table):
            reader.fail(places[""], 'give exactly one of `model = "ID or name"` (already imported) '
                                    'or `file = "MODEL.onnx"` (imported on the fly)')
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            reader.fail(places["inputs"], 'must be a list like ["rgb=1x3x32x32:image"]')
            inputs = []
        elif inputs and "file" not in table:
            reader.fail(places["inputs"], "input declarations apply when importing: use them with `file = ...`")
        path = _model_file(reader, file, spec_dir, places["file"]) if file else None
        yield ModelEntry(f"[[models]] #{index + 1}", model, path, name, tuple(inputs), places)


def _model_file(reader: _Reader, text: str, spec_dir: Path, where: str) -> Path | None:
    """A relative path is looked up beside the spec first, then in the current folder."""
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [spec_dir / path, path]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        reader.fail(where, f"no file {text!r} (looked in {' and '.join(str(c.parent) or '.' for c in candidates)})")
    return found


def _job_entries(reader: _Reader, raw: Any) -> Iterable[JobEntry]:
    for index, table in enumerate(_tables(reader, raw, "jobs", 'layer = "NAME" and units = "0-7" | "all"')):
        if not isinstance(table, dict):
            reader.fail(reader.loc.where("jobs", index), "must be a table")
            continue
        reader.known_keys(table, JOB_KEYS, "jobs", index)
        places = reader.places("jobs", index, JOB_KEYS)
        layer = _string(reader, table, "layer", places[""], required=True)
        units = _units_text(reader, table.get("units"), places["units"] if "units" in table else places[""])
        target = table.get("target")
        if target is not None and target not in TARGET_KINDS:
            reader.fail(places["target"], f"must be one of {', '.join(TARGET_KINDS)}, not {target!r}")
        batch = table.get("batch")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            reader.fail(places["batch"], f"must be a whole number ≥ 1 (units per Maximize call), not {batch!r}")
        yield JobEntry(f"[[jobs]] #{index + 1}", layer or "", units or "", target, batch, places)


def _units_text(reader: _Reader, raw: Any, where: str) -> str | None:
    """`units` as the CLI's text: "0-7", "all", [0, 3, 7] or class names all work."""
    if raw is None:
        reader.fail(where, 'missing units: give "0,3,7", "0-15", "all" or a list such as [0, 3, 7]')
        return None
    if isinstance(raw, list) and raw and all(isinstance(u, (int, str)) and not isinstance(u, bool) for u in raw):
        return ",".join(str(u) for u in raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str) and raw.strip():
        return raw
    reader.fail(where, f'cannot read {raw!r}: give "0,3,7", "0-15", "all" or a list such as [0, 3, 7]')
    return None
