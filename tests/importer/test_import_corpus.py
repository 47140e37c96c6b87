"""Every corpus model (both torch exporters, opsets 11–23, handmade exporter quirks) imports:
parity with onnxruntime ≤ 1e-4 relative, every foldable BN folded, none left, usable gradients."""

from __future__ import annotations

import math

import pytest

from kinetoscope.server.importer import import_model

from ..corpus import ALL, get


@pytest.mark.parametrize("name", sorted(ALL))
def test_corpus_model_imports_with_parity(name: str) -> None:
    entry = get(name)
    imported = import_model(entry.onnx, inputs=entry.inputs)
    assert imported.parity.max_rel_err <= 1e-4
    assert not [n for n in imported.graph.graph.node if n.op_type == "BatchNormalization"]
    assert imported.bn_folded == entry.foldable_bn
    assert imported.bn_remaining == entry.bn_count - entry.foldable_bn
    assert set(imported.parity.gradient_norms) == {spec.name for spec in imported.inputs}
    assert all(math.isfinite(g) and g > 0 for g in imported.parity.gradient_norms.values())
    assert imported.catalog, "every model has layers with a channel axis"
    assert imported.catalog[-1].channels > 0
