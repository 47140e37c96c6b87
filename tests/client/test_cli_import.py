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
