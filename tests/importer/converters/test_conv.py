"""Conv with SAME auto_pad and ConvTranspose with auto_pad, output_shape, asymmetric pads and output_padding
match onnxruntime at each opset version."""

from __future__ import annotations

import numpy as np
import pytest

_RNG = np.random.default_rng(5)


def _x(*shape: int) -> np.ndarray:
    return _RNG.uniform(-2, 2, shape).astype(np.float32)


@pytest.mark.parametrize("version", [1, 11, 22])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("size", [7, 8])
def test_conv_same(parity, one_node, version: int, auto_pad: str, size: int) -> None:
    feeds = {"x": _x(1, 4, size, size + 3)}
    attrs = {"auto_pad": auto_pad, "strides": [2, 3], "group": 2}
    parity(one_node("Conv", feeds, version, attrs, {"w": _x(6, 2, 4, 3), "b": _x(6)}), feeds)


def test_conv_same_3d(parity, one_node) -> None:
    """(onnxruntime refuses dilations with SAME padding, so none here.)"""
    feeds = {"x": _x(1, 3, 5, 9, 8)}
    attrs = {"auto_pad": "SAME_LOWER", "strides": [1, 2, 3]}
    parity(one_node("Conv", feeds, 11, attrs, {"w": _x(4, 3, 3, 3, 2)}), feeds)


@pytest.mark.parametrize("version", [1, 11, 22])
@pytest.mark.parametrize("attrs", [
    {"auto_pad": "SAME_UPPER", "strides": [2, 3]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 3]},
    {"auto_pad": "VALID", "strides": [2, 1]},
    {"output_shape": [10, 8], "strides": [3, 2]},
    {"output_shape": [8, 7], "strides": [3, 2], "auto_pad": "SAME_UPPER"},
    {"output_shape": [11, 10], "strides": [3, 2]},
    {"pads": [0, 1, 2, 0], "output_padding": [1, 1], "strides": [2, 2]},
    {"pads": [1, 0, 0, 1], "dilations": [2, 1], "group": 2},
], ids=["same_upper", "same_lower", "valid", "output_shape", "output_shape_upper", "output_shape_larger", "asymmetric", "dilated_groups"])
def test_conv_transpose(parity, one_node, version: int, attrs: dict) -> None:
    feeds = {"x": _x(1, 4, 3, 4)}
    parity(one_node("ConvTranspose", feeds, version, attrs, {"w": _x(4, 3, 3, 3), "b": _x(6 if "group" in attrs else 3)}),
           feeds)


def test_conv_transpose_3d_same(parity, one_node) -> None:
    feeds = {"x": _x(1, 2, 3, 4, 5)}
    attrs = {"auto_pad": "SAME_UPPER", "strides": [1, 2, 2]}
    parity(one_node("ConvTranspose", feeds, 11, attrs, {"w": _x(2, 3, 3, 4, 4)}), feeds)
