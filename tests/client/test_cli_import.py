"""`kinetoscope import` / `layers` / `models`: the JSON contract, errors, and a light client package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinetoscope.client.cli import main
from kinetoscope.model_zoo.export import export_model


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zoo") / "vgg.onnx"
    return export_model("vgg16_two_stream", path, classes=5, width=1 / 16, size=64)


def _run_json(capsys, *argv: str):
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


def test_import_then_layers_follow_the_contract(vgg_file, tmp_path, capsys) -> None:
    store = str(tmp_path / "store")
    doc = _run_json(capsys, "--store", store, "import", str(vgg_file), "--name", "vgg", "--input", "flow=1x20x64x64:stacked_flow:-20..20", "--json")
    assert set(doc) >= {"id", "name", "inputs", "layers", "parity", "bn_folded", "bn_remaining"}
    assert doc["name"] == "vgg" and len(doc["id"]) == 16
    assert [(i["name"], i["kind"]) for i in doc["inputs"]] == [("rgb", "image"), ("flow", "stacked_flow")]
    assert doc["inputs"][1]["range"] == [-20.0, 20.0]
    assert doc["parity"]["max_rel_err"] <= 1e-4
    layers = _run_json(capsys, "--store", store, "layers", "vgg", "--json")
    assert len(layers) == doc["layers"]
    for layer in layers:
        assert set(layer) >= {"name", "shape", "channels", "receptive_field", "stride", "inputs"}
    assert layers[-1]["name"] == "logits" and layers[-1]["channels"] == 5
    by_id = _run_json(capsys, "--store", store, "layers", doc["id"], "--json")
    assert by_id == layers
    models = _run_json(capsys, "--store", store, "models", "--json")
    assert [m["id"] for m in models] == [doc["id"]]


def test_unknown_model_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(["--store", str(tmp_path), "layers", "nope", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "no model 'nope' in the store" in captured.err


def test_bad_file_is_a_clear_error_and_stores_nothing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    code = main(["--store", str(tmp_path / "store"), "import", str(bad), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "import" in captured.err and ("not an ONNX model" in captured.err or "checker" in captured.err)
    assert not [p for p in (tmp_path / "store" / "models").iterdir()]


def test_client_package_does_not_import_torch() -> None:
    code = "import sys, kinetoscope.client, kinetoscope.client.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert result.stdout.strip() == "False"


def test_maximize_writes_the_contract_npz_and_render_makes_a_gallery(tmp_path, capsys) -> None:
    import numpy as np

    import kinetoscope.model_zoo as zoo

    store = str(tmp_path / "store")
    model = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
    _run_json(capsys, "--store", store, "import", str(model), "--name", "small", "--json")
    doc = _run_json(capsys, "--store", store, "maximize", "small", "--layer", "logits",
                    "--units", "red_disc_right,blue_disc_left,0-1", "--gamma", "0,5", "--iters", "6",
                    "--out", str(tmp_path / "out"), "--json")
    result = np.load(doc["result"])
    assert result["rgb"].shape == (4, 2, 3, 32, 32) and result["flow"].shape == (4, 2, 20, 32, 32)
    assert list(result["gammas"]) == [0.0, 5.0] and list(result["kappas"]) == [1.0, 1.0]
    assert result["activation"].shape == (4, 2)
    assert list(result["units"]) == ["Logit('logits', 0)", "Logit('logits', 3)", "Logit('logits', 0)", "Logit('logits', 1)"]
    gallery = _run_json(capsys, "--store", store, "render", doc["result"], "--json")
    assert Path(gallery["index"]).is_file()


def test_maximize_with_a_bad_unit_is_a_clear_error(tmp_path, capsys) -> None:
    import kinetoscope.model_zoo as zoo

    store = str(tmp_path / "store")
    model = Path(zoo.__file__).parent / "trained" / "two_stream_small.onnx"
    _run_json(capsys, "--store", store, "import", str(model), "--name", "small", "--json")
    code = main(["--store", store, "maximize", "small", "--layer", "conv_fusion", "--units", "999", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "outside 0..63" in captured.err
    code = main(["--store", store, "maximize", "small", "--layer", "nope", "--units", "0"])
    assert code == 2 and "has no layer 'nope'" in capsys.readouterr().err
