"""`kinetoscope sweep`: the files it writes, resuming after an interruption, refusing a changed spec, spec errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kinetoscope.client.cli import main
from kinetoscope.client.client import Client
from kinetoscope.client.sweep import run as sweep_run
from kinetoscope.client.sweep import SpecError, load_spec, plan_sweep

REPO = Path(__file__).resolve().parents[2]
TRAINED = REPO / "model_zoo" / "trained"
FINAL, EPOCH1, EPOCH2 = (TRAINED / f"two_stream_small{tag}.onnx" for tag in ("", ".epoch1", ".epoch2"))

SPEC = """\
iterations = {iterations}
seed = 0
settings = [{{kappa = 1, gamma = 0}}, {{kappa = 1, gamma = 5}}]

[[models]]
model = "two_stream_small"
[[models]]
file = "{epoch}"
name = "epoch1"
inputs = ["rgb=1x3x32x32:image", "flow=1x20x32x32:stacked_flow"]

[[jobs]]
layer = "conv_fusion"
units = "0-3"
batch = 2
[[jobs]]
layer = "/fc/Gemm"
units = ["red_disc_left", 0, 5]
"""
BATCHES = [f"{model}/{file}" for model in ("two_stream_small", "epoch1")
           for file in ("conv_fusion/units-0-1.npz", "conv_fusion/units-2-3.npz", "logits/units-0-5.npz")]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _write_spec(folder: Path, *, iterations: int = 4, epoch: Path = EPOCH1) -> Path:
    path = folder / "spec.toml"
    path.write_text(SPEC.format(iterations=iterations, epoch=epoch.as_posix()), encoding="utf-8")
    return path


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store")
    code, _, err = _cli("--store", str(path), "import", str(FINAL), "--name", "two_stream_small", "--json")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def done(store, tmp_path_factory) -> tuple[Path, Path, dict]:
    """A finished sweep: (spec, out, the JSON summary)."""
    folder = tmp_path_factory.mktemp("sweep")
    spec, out = _write_spec(folder), folder / "out"
    code, stdout, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(out), "--json")
    assert code == 0, err
    return spec, out, json.loads(stdout)


def _copy(done, tmp_path: Path) -> Path:
    shutil.copytree(done[1], tmp_path / "out")
    return tmp_path / "out"


def test_sweep_writes_batches_merged_results_and_galleries(done) -> None:
    _, out, doc = done
    assert (doc["out"], doc["batches"], doc["skipped"], doc["ran"]) == (str(out), 6, 0, 6)
    for relative in BATCHES:
        with np.load(out / relative) as batch:
            units = 3 if "logits" in relative else 2
            assert batch["rgb"].shape == (units, 2, 3, 32, 32) and batch["flow"].shape == (units, 2, 20, 32, 32)
            assert batch["activation"].shape == (units, 2) and list(batch["gammas"]) == [0.0, 5.0]
            assert np.isfinite(batch["activation"]).all()
    layers = [f"{m}/{l}" for m in ("two_stream_small", "epoch1") for l in ("conv_fusion", "logits")]
    assert doc["galleries"] == [str(out / layer / "index.html") for layer in layers]
    assert all(Path(index).is_file() for index in doc["galleries"])
    with np.load(out / "epoch1/conv_fusion/result.npz") as merged, np.load(out / "epoch1/conv_fusion/units-0-1.npz") as a, \
            np.load(out / "epoch1/conv_fusion/units-2-3.npz") as b:
        assert merged["rgb"].shape == (4, 2, 3, 32, 32)
        np.testing.assert_array_equal(merged["flow"], np.concatenate([a["flow"], b["flow"]]))
        assert list(merged["units"]) == [f"Channel('conv_fusion', {u})" for u in range(4)]
    with np.load(out / "two_stream_small/logits/result.npz") as logits, np.load(out / "epoch1/logits/result.npz") as early:
        assert list(logits["units"]) == [f"Logit('logits', {u})" for u in (0, 1, 5)]  # class name → 1, in unit order
        assert not np.allclose(logits["activation"], early["activation"])  # two different models
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["batches"]) == sorted(BATCHES) and manifest["params"]["iterations"] == 4
    lines = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["batch"] * 6 + ["gallery"] * 4


def test_second_run_skips_everything_and_changes_no_byte(done, store) -> None:
    spec, out, _ = done
    before = _files(out)
    code, stdout, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(out), "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert (doc["batches"], doc["skipped"], doc["ran"]) == (6, 6, 0)
    assert _files(out) == before


def test_interrupted_sweep_resumes_with_the_missing_batches_only(store, tmp_path, monkeypatch) -> None:
    spec, out = _write_spec(tmp_path), tmp_path / "out"
    real, calls = sweep_run.save_batch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_run, "save_batch", interrupted)
    code, stdout, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(out), "--json")
    assert code == 130 and stdout == ""
    assert "1 of 6 batches are saved" in err and "again to resume" in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz")) == [BATCHES[0]]
    first = (out / BATCHES[0]).read_bytes()
    # leftovers of a kill mid-write: neither is recorded, so neither counts as a result
    (out / BATCHES[1]).write_bytes(b"PK\x03\x04 cut short")
    (out / BATCHES[1]).with_name(".units-2-3.npz.partial").write_bytes(b"PK")
    monkeypatch.setattr(sweep_run, "save_batch", real)
    code, stdout, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(out), "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert (doc["batches"], doc["skipped"], doc["ran"]) == (6, 1, 5)
    assert (out / BATCHES[0]).read_bytes() == first
    with np.load(out / BATCHES[1]) as batch:
        assert batch["rgb"].shape == (2, 2, 3, 32, 32)


def test_deleted_or_damaged_files_are_redone_and_nothing_else(done, store, tmp_path) -> None:
    out = _copy(done, tmp_path)
    (out / "epoch1/conv_fusion/units-2-3.npz").unlink()
    damaged = out / "two_stream_small/logits/units-0-5.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    (out / "epoch1/logits/index.html").unlink()
    before = _files(out)
    logged = len((out / "progress.jsonl").read_text().splitlines())
    code, stdout, err = _cli("--store", str(store), "sweep", str(done[0]), "--out", str(out), "--json")
    assert code == 0, err
    assert (json.loads(stdout)["skipped"], json.loads(stdout)["ran"]) == (4, 2)
    lines = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()[logged:]]
    redone = ["two_stream_small/logits/units-0-5.npz", "epoch1/conv_fusion/units-2-3.npz"]
    # the redone batches come out as before (a unit's start depends on seed, unit and setting only),
    # so only the gallery whose page was deleted is rendered again
    assert [(line["event"], line.get("file") or line["layer"]) for line in lines] == [
        ("batch", redone[0]), ("batch", redone[1]), ("gallery", "epoch1/logits")]
    for relative in redone:
        with np.load(out / relative) as now, np.load(done[1] / relative) as first:
            np.testing.assert_allclose(now["rgb"], first["rgb"], rtol=1e-5, atol=1e-4)
    after = _files(out)
    changed = {k for k in before if k in after and before[k] != after[k]}
    assert redone[0] in changed and changed <= {redone[0], "manifest.json", "progress.jsonl"}
    assert "epoch1/logits/index.html" in after


def test_changed_spec_is_refused_unless_restart(done, store, tmp_path) -> None:
    out = _copy(done, tmp_path)
    before = _files(out)
    changed = _write_spec(tmp_path, iterations=5)
    code, stdout, err = _cli("--store", str(store), "sweep", str(changed), "--out", str(out), "--json")
    assert code == 2 and stdout == ""
    assert "different spec (iterations 4 → 5)" in err and "--restart" in err
    (tmp_path / "other").mkdir()
    other_model = _write_spec(tmp_path / "other", epoch=EPOCH2)  # the name "epoch1" for other weights
    code, _, err = _cli("--store", str(store), "sweep", str(other_model), "--out", str(out))
    assert code == 2 and "holds results of model" in err and "--restart" in err
    assert _files(out) == before
    code, stdout, err = _cli("--store", str(store), "sweep", str(changed), "--out", str(out), "--json", "--restart")
    assert code == 0, err
    assert (json.loads(stdout)["ran"], json.loads(stdout)["skipped"]) == (6, 0)
    assert json.loads((out / "manifest.json").read_text())["params"]["iterations"] == 5


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


BAD_SPECS = {
    "unknown key": ('units = "0-3"', 'unit = "0-3"', 'unit = "0-3"', 1,
                    "[[jobs]] #1 unit: unknown key; did you mean 'units'? (known keys: layer, units"),
    "missing layer": ('"conv_fusion"', '"conv_fusoin"', "conv_fusoin", 1,
                      "[[jobs]] #1 layer: model 'two_stream_small' has no layer 'conv_fusoin'; did you mean 'conv_fusion'"),
    "units out of range": ('units = "0-3"', 'units = "60-66"', "60-66", 1, "units [64, 65, 66] are outside 0..63"),
    "unreadable units": ('units = "0-3"', 'units = "first"', "first", 1, "cannot read unit 'first'"),
    "unknown model": ('model = "two_stream_small"', 'model = "nope"', "nope", 1, "no model 'nope' in the store"),
    "setting key": ("gamma = 5}", "gama = 5}", "settings", 1, "entry 2 has unknown key 'gama'"),
    "zero iterations": ("iterations = 4", "iterations = 0", "iterations", 1, "must be a whole number from 1 to"),
    "logit target on a conv": ("batch = 2", 'batch = 2\ntarget = "logit"', "logit", 1,
                               "'conv_fusion' is not a logits output"),
    "unit twice per layer": ('"/fc/Gemm"\nunits = ["red_disc_left", 0, 5]', '"/conv_fusion/relu/Relu"\nunits = [3, 9]',
                             "units = [3, 9]", 1,
                             "units [3] of layer 'conv_fusion' are already swept by [[jobs]] #1"),
    "model and file": ('name = "epoch1"', 'name = "epoch1"\nmodel = "x"', "[[models]]", 2, "give exactly one of"),
}


@pytest.mark.parametrize("case", BAD_SPECS, ids=list(BAD_SPECS))
def test_bad_spec_names_the_line_and_the_fix_before_any_work(case, store, tmp_path) -> None:
    old, new, needle, occurrence, message = BAD_SPECS[case]
    spec = _write_spec(tmp_path)
    text = spec.read_text().replace(old, new, 1)
    spec.write_text(text)
    code, stdout, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and stdout == ""
    assert f"{spec}:{_line(text, needle, occurrence)}: " in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_every_problem_is_reported_at_once_and_bad_toml_is_named(store, tmp_path) -> None:
    spec = _write_spec(tmp_path)
    spec.write_text(spec.read_text().replace('"conv_fusion"', '"conv_fusoin"').replace('"red_disc_left"', '"purple"'))
    code, _, err = _cli("--store", str(store), "sweep", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and "no layer 'conv_fusoin'" in err and "cannot read unit 'purple'" in err
    spec.write_text("iterations = 4\nseed = = 0\n")
    with pytest.raises(SpecError, match=r"not valid TOML: .*line 2"):
        load_spec(spec)


def test_example_spec_is_valid(store, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    spec = load_spec(REPO / "docs" / "sweep-example.toml")
    assert (spec.out, spec.iterations, len(spec.settings)) == (Path("sweeps/example"), 128, 3)
    with Client(None, store=store) as client:
        plan = plan_sweep(client, spec)
    assert list(plan.models) == ["two_stream_small", "epoch1"]
    assert [b.file for b in plan.batches[:3]] == ["two_stream_small/conv_fusion/units-0-3.npz",
                                                  "two_stream_small/conv_fusion/units-4-7.npz",
                                                  "two_stream_small/logits/units-0-9.npz"]
