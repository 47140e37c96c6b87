"""MaxPool (and its Indices) / AveragePool / LpPool / GlobalMaxPool converters match onnxruntime, pads, ceil_mode
and dilations included."""

from __future__ import annotations

import itertools

import numpy as np
import onnx2torch
import pytest
import torch

_RNG = np.random.default_rng(0)

# (kernel, strides, pads begin, pads end, dilations) for one spatial axis; ranks repeat them with small twists.
_AXIS_CASES = [
    (3, 2, 1, 0, 1),  # asymmetric pads
    (2, 2, 0, 1, 1),  # ceil_mode: last window would start in the end padding
    (3, 2, 0, 0, 1),  # ceil_mode: last window hangs over the input's end
    (2, 1, 1, 1, 2),  # dilations
    (3, 3, 2, 1, 2),  # dilations, strides and pads together
    (3, 1, 1, 1, 1),  # symmetric pads within half a kernel: one torch pool call (BN-Inception's 3x3 average)
    (3, 2, 1, 1, 2),  # the same, strided and dilated
]
_SIZES = {1: [10], 2: [8, 7], 3: [6, 5, 7]}  # even sizes give ceil_mode windows past the end


def _attrs(rank: int, case: tuple[int, int, int, int, int], ceil: int) -> dict:
    kernel, stride, begin, end, dilation = case
    return {
        "kernel_shape": [kernel] * rank,
        "strides": [stride] + [max(1, stride - 1)] * (rank - 1),
        "pads": [begin] * rank + [end] + [begin] * (rank - 1),
        "dilations": [dilation] * rank,
        "ceil_mode": ceil,
    }


def _input(rank: int) -> np.ndarray:
    return _RNG.standard_normal((2, 3, *_SIZES[rank])).astype(np.float32)


@pytest.mark.parametrize("rank,case,ceil", itertools.product([1, 2, 3], _AXIS_CASES, [0, 1]))
def test_max_pool(parity, one_node, rank: int, case: tuple, ceil: int) -> None:
    feeds = {"x": _input(rank)}
    parity(one_node("MaxPool", feeds, 22, _attrs(rank, case, ceil)), feeds)


@pytest.mark.parametrize("rank,case,ceil,count_pad", itertools.product([1, 2, 3], _AXIS_CASES, [0, 1], [0, 1]))
def test_average_pool(parity, one_node, rank: int, case: tuple, ceil: int, count_pad: int) -> None:
    feeds = {"x": _input(rank)}
    attrs = {**_attrs(rank, case, ceil), "count_include_pad": count_pad}
    parity(one_node("AveragePool", feeds, 22, attrs), feeds)


@pytest.mark.parametrize(
    "op,rank,auto_pad,kernel,stride,dilation,ceil",
    itertools.product(
        ["MaxPool", "AveragePool"], [1, 2, 3], ["SAME_UPPER", "SAME_LOWER", "VALID"], [2, 3], [1, 2], [1, 2], [0, 1]
    ),
)
def test_auto_pad(
    parity, one_node, op: str, rank: int, auto_pad: str, kernel: int, stride: int, dilation: int, ceil: int
) -> None:
    feeds = {"x": _input(rank)}
    attrs = {
        "auto_pad": auto_pad,
        "kernel_shape": [kernel] * rank,
        "strides": [stride] * rank,
        "dilations": [dilation] * rank,
        "ceil_mode": ceil,
    }
    if op == "AveragePool":
        attrs["count_include_pad"] = 1
    parity(one_node(op, feeds, 22, attrs), feeds)


_VERSION_ATTRS = {
    ("MaxPool", 1): {},
    ("MaxPool", 8): {"storage_order": 0},
    ("MaxPool", 10): {"ceil_mode": 1, "dilations": [1, 2]},
    ("MaxPool", 11): {"ceil_mode": 1, "dilations": [2, 1]},
    ("MaxPool", 12): {"ceil_mode": 1},
    ("MaxPool", 22): {"ceil_mode": 1, "dilations": [2, 2]},
    ("AveragePool", 1): {},
    ("AveragePool", 7): {"count_include_pad": 1},
    ("AveragePool", 10): {"count_include_pad": 1, "ceil_mode": 1},
    ("AveragePool", 11): {"count_include_pad": 0, "ceil_mode": 1},
    ("AveragePool", 19): {"count_include_pad": 1, "ceil_mode": 1, "dilations": [2, 1]},
    ("AveragePool", 22): {"count_include_pad": 0, "ceil_mode": 1, "dilations": [1, 2]},
}


@pytest.mark.parametrize("op,version", list(_VERSION_ATTRS))
def test_versions(parity, one_node, op: str, version: int) -> None:
    feeds = {"x": _input(2)}
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], **_VERSION_ATTRS[op, version]}
    # onnxruntime has no AveragePool-1 kernel; version 7 with its default count_include_pad=0 means the same
    reference = one_node(op, feeds, 7, attrs) if (op, version) == ("AveragePool", 1) else None
    parity(one_node(op, feeds, version, attrs), feeds, reference=reference)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_ceil_mode_drops_window_starting_in_end_padding(parity, one_node, op: str) -> None:
    feeds = {"x": _input(1)[..., :4]}
    model = one_node(op, feeds, 22, {"kernel_shape": [2], "strides": [2], "pads": [0, 1], "ceil_mode": 1})
    parity(model, feeds)
    assert onnx2torch.convert(model)(torch.from_numpy(feeds["x"])).shape[-1] == 2


@pytest.mark.parametrize("count_pad,expected", [(0, [1.5, 3.0, 4.0]), (1, [1.0, 3.0, 2.0])])
def test_ceil_mode_divisor(parity, one_node, count_pad: int, expected: list[float]) -> None:
    """The last window holds x[3], an end pad and one position past it: the divisor counts pads, not the rest."""
    feeds = {"x": np.array([[[1.0, 2.0, 3.0, 4.0]]], np.float32)}
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 1], "ceil_mode": 1, "count_include_pad": count_pad}
    model = one_node("AveragePool", feeds, 19, attrs)
    parity(model, feeds)
    assert onnx2torch.convert(model)(torch.from_numpy(feeds["x"])).flatten().tolist() == expected


@pytest.mark.parametrize("rank,version", itertools.product([1, 2, 3], [1, 22]))
def test_global_max_pool(parity, one_node, rank: int, version: int) -> None:
    feeds = {"x": _input(rank)}
    parity(one_node("GlobalMaxPool", feeds, version), feeds)


def test_average_pool_gradcheck(one_node) -> None:
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1, "dilations": [1, 2]}
    module = onnx2torch.convert(one_node("AveragePool", {"x": _input(2)}, 22, attrs)).double()
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))


def test_four_spatial_axes_raise(one_node) -> None:
    feeds = {"x": np.zeros((1, 1, 3, 3, 3, 3), np.float32)}
    with pytest.raises(NotImplementedError, match="MaxPool with 4 spatial axes"):
        onnx2torch.convert(one_node("MaxPool", feeds, 22, {"kernel_shape": [2, 2, 2, 2]}))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_symmetric_pads_take_one_torch_pool_call(one_node, op: str) -> None:
    """Where torch's own padding gives onnxruntime's result, no padded copy of the input is made."""
    from kinetoscope.server.importer.converters.pooling import OnnxPool

    feeds = {"x": _input(2)}
    direct = {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "ceil_mode": 0}
    lopsided = {**direct, "pads": [1, 1, 0, 0]}  # begins (1, 1), ends (0, 0)
    for attrs, expected in ((direct, [1, 1]), (lopsided, None)):
        module = onnx2torch.convert(one_node(op, feeds, 22, attrs))
        pool = next(m for m in module.modules() if isinstance(m, OnnxPool))
        assert pool._plan(list(_SIZES[2]))[1] == expected


@pytest.mark.parametrize("version", [8, 10, 11, 12, 22])
@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("case", [_AXIS_CASES[0], _AXIS_CASES[2], _AXIS_CASES[5]], ids=["asymmetric", "ceil", "direct"])
def test_max_pool_indices(parity, one_node, version: int, storage_order: int, rank: int, case) -> None:
    """The Indices output: flat positions in the whole input (N, C, spatial), row- or column-major."""
    attrs = {**_attrs(rank, case, ceil=int(version >= 10)), "storage_order": storage_order}
    if version < 10:
        attrs = {k: v for k, v in attrs.items() if k not in ("dilations", "ceil_mode")}
    elif version < 11 or case[4] == 1:
        attrs.pop("dilations")
    feeds = {"x": _input(rank)}
    parity(one_node("MaxPool", feeds, version, attrs, num_outputs=2), feeds)


@pytest.mark.parametrize("version", [11, 18, 22])
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_lp_pool(parity, one_node, version: int, p: int, rank: int) -> None:
    case = _AXIS_CASES[4] if version >= 18 else _AXIS_CASES[0]
    attrs = {**_attrs(rank, case, ceil=1), "p": p}
    if version < 18:
        attrs = {k: v for k, v in attrs.items() if k not in ("dilations", "ceil_mode")}
    feeds = {"x": _input(rank)}
    parity(one_node("LpPool", feeds, version, attrs), feeds)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_lp_pool_auto_pad(parity, one_node, auto_pad: str) -> None:
    feeds = {"x": _input(2)}
    parity(one_node("LpPool", feeds, 18, {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": auto_pad}), feeds)
