"""The shared vocabulary is defined once, in kinetoscope.common, and nowhere else in the source tree.

Kinds, value ranges, the kind guess, the input description and the layer look-up used
to be written out again in the client, the importer, the engine and the renderer, and
the copies drifted (three kind guesses with three rules). These checks read every
source file's syntax tree and fail on a new copy, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from kinetoscope.common import (
    APPEARANCE_KINDS, DEFAULT_RANGE, INPUT_KINDS, MOTION_KINDS, SEQUENCE_KINDS, STACKED_FLOW_KINDS, InputKind,
    InputSpec, LayoutError, find_layer, from_canonical, infer_kind, infer_layout, norm_bound, parse_kind,
    sample_layout, to_canonical,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("proto/kinetoscope", "server", "client", "model_zoo")
COMMON = ROOT / "proto" / "kinetoscope" / "common"


def _trees() -> list[tuple[str, ast.AST]]:
    out = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name.endswith(("_pb2.py", "_pb2_grpc.py")) or COMMON in path.parents:
                continue
            out.append((str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))))
    return out


TREES = _trees()


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _strings(node: ast.AST) -> list[str]:
    elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
    return [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def _found(check) -> list[str]:
    return [f"{name}:{node.lineno}" for name, tree in TREES for node in ast.walk(tree) if check(node)]


def test_the_scan_reads_every_part_of_the_source_tree() -> None:
    names = [name for name, _ in TREES]
    for expected in ("client/video.py", "server/importer/inputs.py", "client/render/result.py", "proto/kinetoscope/motion.py"):
        assert expected in names
    assert len(names) > 150


def _kinds_literal(node: ast.AST | None) -> bool:
    """A tuple, list or set literal (or a frozenset/set/tuple of one) naming two or more kinds."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple"):
        node = node.args[0] if node.args else None
    return node is not None and len(set(_strings(node)) & set(INPUT_KINDS)) >= 2


def test_no_other_collection_of_input_kinds() -> None:
    """A name bound to a collection of kinds, or `kind in (...)` with one written out, is a second list of them.

    Example data that happens to name kinds (one model's inputs) is not a definition.
    """

    def defines(node: ast.AST) -> bool:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            return any(isinstance(t, (ast.Name, ast.Attribute)) for t in targets) and _kinds_literal(node.value)
        if isinstance(node, ast.Compare):
            return any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and any(map(_kinds_literal, node.comparators))
        return False

    assert _found(defines) == []


def test_no_other_default_range() -> None:
    lo, hi = DEFAULT_RANGE
    assert _found(lambda node: isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 2
                  and [_number(e) for e in node.elts] == [lo, hi]) == []


def test_no_other_kind_guess_input_spec_or_layer_look_up() -> None:
    defined = {"infer_kind", "InputSpec", "find_layer", "sample_layout", "infer_layout", "to_canonical"}
    assert _found(lambda node: isinstance(node, (ast.FunctionDef, ast.ClassDef))
                  and node.name.lstrip("_") in defined) == []


def test_no_other_look_up_by_tensor_or_node_name() -> None:
    """`name in (layer.name, layer.node)` and its dict form are find_layer written out again."""

    def names_node(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "node"
                or isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "node"
                or isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "node")

    assert _found(lambda node: isinstance(node, ast.Compare) and any(isinstance(op, ast.In) for op in node.ops)
                  and any(isinstance(c, ast.Tuple) and any(names_node(e) for e in c.elts)
                          for c in node.comparators)) == []


def test_kinds_are_the_wire_strings_and_say_what_they_hold() -> None:
    assert INPUT_KINDS == ("image", "stacked_flow", "stacked_flow_planar", "video", "flow_video")
    assert MOTION_KINDS == {"stacked_flow", "stacked_flow_planar", "flow_video"}
    assert APPEARANCE_KINDS == {"image", "video"} and MOTION_KINDS.isdisjoint(APPEARANCE_KINDS)
    assert STACKED_FLOW_KINDS == {"stacked_flow", "stacked_flow_planar"}
    assert SEQUENCE_KINDS == set(INPUT_KINDS) - {"image"}
    assert InputKind.FLOW_VIDEO == "flow_video" and f"{InputKind.FLOW_VIDEO}" == "flow_video"
    assert InputKind("video") is InputKind.VIDEO and InputKind.VIDEO in APPEARANCE_KINDS
    assert [k.stream for k in InputKind] == ["appearance", "motion", "motion", "appearance", "motion"]
    assert [k.has_time_axis for k in InputKind] == [False, False, False, True, True]
    assert [k.sample_axes for k in InputKind] == ["CHW", "CHW", "CHW", "CTHW", "CTHW"]
    assert parse_kind("stacked_flow") is InputKind.STACKED_FLOW
    with pytest.raises(ValueError, match="unknown kind 'optical'; use one of image, stacked_flow"):
        parse_kind("optical")


@pytest.mark.parametrize(("channels", "time", "kind", "exact"), [
    (3, False, "image", "image"),
    (1, False, "image", "image"),
    (2, False, "stacked_flow", "stacked_flow"),
    (20, False, "stacked_flow", "stacked_flow"),
    (5, False, "image", None),  # fits no kind: the importer still describes it, a result file must say
    (3, True, "video", "video"),
    (1, True, "video", "video"),
    (2, True, "flow_video", "flow_video"),
    (4, True, "video", None),
])
def test_one_kind_guess_for_importer_client_and_renderer(channels, time, kind, exact) -> None:
    assert infer_kind(channels, time) == kind
    assert infer_kind(channels, time, exact=True) == exact


def test_value_range_and_norm_bound() -> None:
    assert DEFAULT_RANGE == (-128.0, 127.0)
    assert norm_bound(None) == pytest.approx(160.0)
    assert norm_bound((0.0, 1.0)) == pytest.approx(160.0 / 255.0)
    spec = InputSpec("flow", (1, 20, 8, 8), "stacked_flow", (-20.0, 20.0), "NCHW")
    assert spec.norm_bound == pytest.approx(160.0 * 40.0 / 255.0) and spec.sample_layout == "CHW"
    assert InputSpec("x").range_or_default == DEFAULT_RANGE
    assert spec.to_json() == {"name": "flow", "shape": [1, 20, 8, 8], "kind": "stacked_flow", "layout": "NCHW",
                              "range": [-20.0, 20.0], "inferred": []}


def test_layouts_go_to_canonical_and_back() -> None:
    assert sample_layout("NCDHW") == "CTHW" and sample_layout("nhwc") == "HWC" and sample_layout("THWC") == "THWC"
    assert infer_layout((8, 4, 4, 3)) == "THWC" and infer_layout((2, 8, 4, 4)) == "CTHW"
    sample = np.arange(8 * 4 * 5 * 3).reshape(8, 4, 5, 3)  # T, H, W, C
    canonical = to_canonical(sample, "NTHWC")
    assert canonical.shape == (3, 8, 4, 5) and canonical[2, 7, 3, 4] == sample[7, 3, 4, 2]
    np.testing.assert_array_equal(from_canonical(canonical, "THWC"), sample)
    with pytest.raises(LayoutError, match="NCHW, NHWC"):
        sample_layout("NCW")
    with pytest.raises(LayoutError, match="does not match"):
        to_canonical(sample, "CHW")


def test_layers_are_found_by_tensor_or_node_name_in_objects_and_stored_dicts() -> None:
    class Layer:
        def __init__(self, name: str, node: str) -> None:
            self.name, self.node = name, node

    layers = [Layer("conv1", "/conv1/Conv"), Layer("conv_fusion", "/conv_fusion/relu/Relu")]
    assert find_layer(layers, "conv_fusion") is layers[1]
    assert find_layer(layers, "/conv_fusion/relu/Relu") is layers[1]
    assert find_layer(layers, "conv9") is None
    stored = [{"name": "logits"}, {"name": "fc", "node": "/fc/Gemm"}]
    assert find_layer(stored, "/fc/Gemm") is stored[1] and find_layer(stored, "logits") is stored[0]
