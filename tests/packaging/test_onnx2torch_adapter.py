"""onnx2torch's private names are used in one module only, conversion swaps no globals, and threads convert at once."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from kinetoscope.server.importer.convert import SkipRandomInit, convert
from tests.importer.onnx_builders import init, model

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "server" / "importer" / "onnx2torch_adapter.py"
SOURCES = ("server", "client", "proto", "model_zoo", "bench", "tests")


def _python_files() -> list[Path]:
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def private_onnx2torch_uses(source: str) -> list[str]:
    """`onnx2torch` names starting with `_` that the source imports or reads as attributes, with their lines."""
    tree = ast.parse(source)
    aliases = set()  # local names bound to onnx2torch modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "onnx2torch":
                    aliases.add(alias.asname or "onnx2torch")
                    found += [f"{node.lineno}: import {alias.name}" for part in alias.name.split(".") if _private(part)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "onnx2torch":
            parts = [*node.module.split("."), *(alias.name for alias in node.names)]
            found += [f"{node.lineno}: from {node.module} import {part}" for part in parts if _private(part)]
            aliases.update(alias.asname or alias.name for alias in node.names if not _private(alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def mock_uses(source: str) -> list[str]:
    """Imports of unittest.mock (or the mock package), with their lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        modules += [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else []
        found += [f"{node.lineno}: {m}" for m in modules if m in ("mock", "unittest.mock") or m.startswith("mock.")]
    return found


def test_the_checks_recognize_private_names_and_mock() -> None:
    assert private_onnx2torch_uses("from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY")
    assert private_onnx2torch_uses("import onnx2torch.converter as c\nc._remove_initializers_from_input(m)")
    assert private_onnx2torch_uses("import onnx2torch\nonnx2torch.node_converters.registry._CONVERTER_REGISTRY")
    assert not private_onnx2torch_uses("import onnx2torch\nonnx2torch.convert(m)\nonnx2torch.__version__")
    assert not private_onnx2torch_uses("from torch.nn.modules.conv import _ConvNd")
    assert mock_uses("from unittest.mock import patch") and mock_uses("import unittest.mock")
    assert mock_uses("from unittest import mock")
    assert private_onnx2torch_uses(ADAPTER.read_text()), "the adapter is where the private names are"


def test_only_the_adapter_touches_onnx2torch_private_names() -> None:
    files = _python_files()
    assert len(files) > 100 and ADAPTER in files
    offenders = {str(p.relative_to(ROOT)): uses for p in files if p != ADAPTER
                 for uses in [private_onnx2torch_uses(p.read_text(encoding="utf-8"))] if uses}
    assert offenders == {}, f"onnx2torch private names belong in {ADAPTER.name} only"


def test_no_mock_patching_outside_tests() -> None:
    offenders = {str(p.relative_to(ROOT)): uses for p in _python_files() if "tests" not in p.relative_to(ROOT).parts
                 for uses in [mock_uses(p.read_text(encoding="utf-8"))] if uses}
    assert offenders == {}


def _conv_net(channels: int, seed: int, *, weights_as_inputs: bool = False) -> onnx.ModelProto:
    """Conv → Relu → Conv → global average pool on [1, 3, 4, 16, 16]; weights are a seeded draw."""
    rng = np.random.default_rng(seed)
    inits = [init("w1", rng.normal(0, 0.3, (channels, 3, 3, 3, 3))), init("b1", rng.normal(0, 0.1, channels)),
             init("w2", rng.normal(0, 0.3, (channels, channels, 1, 3, 3))), init("b2", rng.normal(0, 0.1, channels))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 6),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[0, 1, 1] * 2),
             helper.make_node("GlobalAveragePool", ["c2"], ["y"], name="pool")]
    built = model(nodes, {"x": [1, 3, 4, 16, 16]}, ["y"], inits)
    if weights_as_inputs:  # as older exporters write them
        built.graph.input.extend(helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in inits)
    return built


def _reference(graph: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _run(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_two_conversions_in_threads_at_once_match_onnxruntime() -> None:
    graphs = [_conv_net(16, seed=1), _conv_net(24, seed=2)]
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 4, 16, 16)).astype(np.float32)
    expected = [_reference(g, x) for g in graphs]
    rounds = 6
    start = threading.Barrier(len(graphs))
    results: dict[int, list[np.ndarray]] = {n: [] for n in range(len(graphs))}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(rounds):
                start.wait(timeout=60)
                results[n].append(_run(convert(graphs[n]), x))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(graphs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    for n, want in enumerate(expected):
        assert len(results[n]) == rounds
        for got in results[n]:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_random_init_is_skipped_only_in_the_converting_thread() -> None:
    torch.manual_seed(0)
    seeded = torch.nn.Conv3d(3, 8, 3).weight.detach().clone()
    inside, release = threading.Event(), threading.Event()

    def converting() -> None:
        with SkipRandomInit():
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=converting)
    thread.start()
    try:
        assert inside.wait(30)
        torch.manual_seed(0)
        elsewhere = torch.nn.Conv3d(3, 8, 3).weight.detach()
    finally:
        release.set()
        thread.join(30)
    torch.testing.assert_close(elsewhere, seeded, rtol=0, atol=0)
    with SkipRandomInit():
        layer = torch.nn.Linear(4, 4)
        with torch.no_grad():
            layer.weight.fill_(7.0)  # a skipped init leaves what is there
        layer.reset_parameters()
    assert torch.all(layer.weight == 7.0)


def test_weights_listed_as_inputs_convert_without_changing_the_model() -> None:
    graph = _conv_net(8, seed=3, weights_as_inputs=True)
    before = graph.SerializeToString()
    x = np.random.default_rng(1).normal(0, 1, (1, 3, 4, 16, 16)).astype(np.float32)
    module = convert(graph)
    assert graph.SerializeToString() == before
    assert len(graph.graph.input) == 5
    np.testing.assert_allclose(_run(module, x), _reference(graph, x), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError):
        module(torch.from_numpy(x), torch.from_numpy(x))  # the weights are not inputs of the module
