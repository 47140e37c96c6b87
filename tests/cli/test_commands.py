"""Every sub-command through the installed console script, reaching the shared `kinetoscope serve`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from .console import TOKEN, kinetoscope


@pytest.fixture(scope="module")
def remote(served) -> list[str]:
    return ["--server", served.address, "--token", TOKEN]


def _json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_models_and_layers(remote, shared_store) -> None:
    models = _json(kinetoscope(*remote, "models", "--json", home=shared_store.home))
    assert [(m["id"], m["name"]) for m in models] == [(shared_store.model_id, "small")]
    table = kinetoscope(*remote, "layers", "small", home=shared_store.home)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["layer", "shape", "ch", "receptive", "field",
                                                                              "stride", "streams"]
    assert any(line.startswith("conv_fusion ") and " 64 " in line for line in table.stdout.splitlines())


def test_maximize_record_render(remote, shared_store, tmp_path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "clips.npz", rgb=rng.uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32),
             flow=rng.uniform(-1, 1, (4, 20, 32, 32)).astype(np.float32), labels=np.array([0, 1, 2, 3]))
    recorded = _json(kinetoscope(*remote, "record", "small", "--clips", "clips.npz", "--layers", "conv_fusion", "--json",
                                 home=shared_store.home, cwd=tmp_path))
    assert recorded["clips"] == 4 and len(recorded["layers"]["conv_fusion"]["max"]) == 64
    result = _json(kinetoscope(*remote, "maximize", "small", "--layer", "conv_fusion", "--units", "0,5", "--gamma", "0,5",
                               "--iters", "4", "--recording", recorded["recording"], "--out", "max", "--json",
                               home=shared_store.home, cwd=tmp_path))
    assert len(result["units"]) == 2 and result["gammas"] == [0.0, 5.0]
    assert np.asarray(result["activation"]).shape == (2, 2) and np.isfinite(result["activation"]).all()
    with np.load(tmp_path / "max" / "result.npz") as saved:
        assert saved["flow"].shape == (2, 2, 20, 32, 32)
    rendered = _json(kinetoscope("render", "max/result.npz", "--json", home=shared_store.home, cwd=tmp_path))
    assert rendered["index"] == "max/index.html" and (tmp_path / "max" / "index.html").is_file()


def test_sweep(remote, shared_store, tmp_path) -> None:
    (tmp_path / "spec.toml").write_text('iterations = 2\nsettings = [{kappa = 1, gamma = 0}]\n[[models]]\nmodel = "small"\n'
                                        '[[jobs]]\nlayer = "logits"\nunits = "0-1"\n')
    summary = _json(kinetoscope(*remote, "sweep", "spec.toml", "--out", "sw", "--json", home=shared_store.home, cwd=tmp_path))
    assert (summary["batches"], summary["ran"]) == (1, 1)
    again = _json(kinetoscope("sweep", "spec.toml", "--out", "sw", "--json", *remote, home=shared_store.home, cwd=tmp_path))
    assert (again["ran"], again["skipped"]) == (0, 1)


def test_zoo_list_and_export(shared_store, tmp_path) -> None:
    listing = _json(kinetoscope("zoo", "list", "--json", home=shared_store.home))
    assert {"i3d", "c3d", "vgg16_two_stream"} <= {m["name"] for m in listing}
    done = kinetoscope("zoo", "export", "i3d", "--out", "i3d.onnx", "--width", "0.125", "--frames", "8", "--size", "32",
                       home=shared_store.home, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr.startswith("wrote i3d.onnx (")
    graph = onnx.load(tmp_path / "i3d.onnx").graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3, 8, 32, 32]


BAR_TIMES = re.compile(r"\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+)")


def _seconds(clock: str) -> float:
    """tqdm's [H:]MM:SS as seconds."""
    value = 0.0
    for part in clock.split(":"):
        value = value * 60 + float(part)
    return value


@pytest.mark.slow
def test_demo(tmp_path) -> None:
    """The demo end to end, with its progress bar forced on: no ETA it shows is over 3× the time the bar finally took."""
    done = kinetoscope("demo", "--out", "out", home=tmp_path / "home", cwd=tmp_path, timeout=900, KINETOSCOPE_PROGRESS="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "gallery: out/index.html" and (tmp_path / "out" / "index.html").is_file()
    assert "atlas: out/atlas/index.html" in done.stdout.splitlines() and (tmp_path / "out" / "atlas" / "index.html").is_file()
    assert "logits: 10 of 10 units class-specific, 10 of 10 prefer their own class" in done.stdout
    shown = [(_seconds(m["elapsed"]), m["remaining"]) for m in BAR_TIMES.finditer(done.stderr)]
    assert len(shown) >= 3, done.stderr[-2000:]
    final = max(elapsed for elapsed, _ in shown)
    etas = [_seconds(remaining) for _, remaining in shown if "?" not in remaining]
    assert etas and max(etas) <= 3 * max(final, 1.0), (max(etas), final)


def test_sweep_detached_then_jobs_commands(remote, shared_store, tmp_path) -> None:
    (tmp_path / "spec.toml").write_text('iterations = 3\nseed = 7\nsettings = [{kappa = 1, gamma = 0}]\n[[models]]\n'
                                        'model = "small"\n[[jobs]]\nlayer = "conv_fusion"\nunits = "0-3"\nbatch = 2\n')
    job = _json(kinetoscope(*remote, "sweep", "spec.toml", "--out", "sw", "--detach", "--json", home=shared_store.home,
                            cwd=tmp_path))["job"]
    assert re.fullmatch(r"[0-9a-f]{16}", job)
    watched = _json(kinetoscope(*remote, "jobs", "watch", job, "--json", home=shared_store.home))
    assert watched["state"] == "SUCCEEDED" and watched["tasks"]["done"] == watched["tasks"]["total"] == 2
    shown = _json(kinetoscope(*remote, "jobs", "show", job, "--json", home=shared_store.home))
    assert [t["units"] for t in shown["task_list"]] == [[0, 1], [2, 3]]
    assert job in [j["id"] for j in _json(kinetoscope(*remote, "jobs", "list", "--state", "succeeded", "--json",
                                                      home=shared_store.home))]
    fetched = _json(kinetoscope(*remote, "jobs", "results", job, "--out", "res", "--json", home=shared_store.home,
                                cwd=tmp_path))
    assert fetched["batches"] == 2 and (tmp_path / "res/small/conv_fusion/index.html").is_file()
    with np.load(tmp_path / "res/small/conv_fusion/result.npz") as merged:
        assert merged["flow"].shape == (4, 1, 20, 32, 32)
    missing = kinetoscope(*remote, "jobs", "show", "0123456789abcdef", home=shared_store.home)
    assert missing.returncode != 0 and missing.stderr.startswith("kinetoscope jobs show: no job")
