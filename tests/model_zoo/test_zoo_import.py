"""Every zoo architecture exports to ONNX (BN kept) and imports with parity and every BN folded."""

from __future__ import annotations

import onnx
import pytest

from kinetoscope.model_zoo.architectures import ARCHITECTURES
from kinetoscope.model_zoo.export import export_model
from kinetoscope.server.importer import import_model


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_zoo_model_exports_and_imports(name: str, tmp_path) -> None:
    info = ARCHITECTURES[name]
    path = export_model(name, tmp_path / f"{name}.onnx", classes=7, frames=info.small_frames, size=info.small_size, width=1 / 16)
    exported = onnx.load(path)
    bn = sum(node.op_type == "BatchNormalization" for node in exported.graph.node)
    imported = import_model(path)
    assert imported.parity.max_rel_err <= 1e-4
    assert imported.bn_folded + imported.bn_remaining == bn
    assert imported.bn_remaining == 0, "every BN in the zoo follows a single-use conv or linear layer"
    assert [spec.kind for spec in imported.inputs] == [info.input_kinds[n] for n in info.input_names]
    assert imported.layer("logits").channels == 7
