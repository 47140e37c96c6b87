"""Graphs written node by node, for the forms no torch exporter emits.

Other exporters (tf2onnx, paddle2onnx, hand-edited files) store weights as Constant
nodes or behind Identity, keep symbolic dims, work channel-last with SAME padding,
and use whatever op versions their opset dictates. Each builder here recreates one
of those forms at toy size.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .common import CorpusModel, random_bn_stats

WeightForm = Literal["initializer", "constant", "identity"]
Dim = int | str

#: Opsets ``opset_net`` is written for.
OPSETS = (11, 13, 17, 18, 21, 23)


class GraphBuilder:
    """Accumulates nodes and parameters; every parameter goes in as ``weights`` says."""

    def __init__(self, seed: int, weights: WeightForm = "initializer", opset: int = 13) -> None:
        self.rng = np.random.default_rng(seed)
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def node(self, op: str, inputs: Sequence[str], **attrs: object) -> str:
        """Append a single-output node and return its output name."""
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def param(self, name: str, value: np.ndarray) -> str:
        """A learned tensor, stored as an initializer, a Constant node, or initializer → Identity."""
        tensor = numpy_helper.from_array(value, name)
        if self.weights == "initializer":
            self.initializers.append(tensor)
            return name
        if self.weights == "constant":
            self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=tensor))
            return name
        self.initializers.append(numpy_helper.from_array(value, f"{name}_stored"))
        self.nodes.append(helper.make_node("Identity", [f"{name}_stored"], [name], name=name))
        return name

    def ints(self, name: str, values: Sequence[int]) -> str:
        """An int64 shape/axes operand; always an initializer, as exporters write them."""
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        kernel: Sequence[int],
        *,
        bias: bool = True,
        group: int = 1,
        transpose: bool = False,
        **attrs: object,
    ) -> str:
        """Conv (or ConvTranspose) with He-scaled random weights."""
        name = self.fresh("conv")
        shape = (cin, cout // group, *kernel) if transpose else (cout, cin // group, *kernel)
        fan_in = (cin // group) * int(np.prod(kernel))
        inputs = [x, self.param(f"{name}.weight", self._normal(shape, np.sqrt(2.0 / fan_in)))]
        if bias:
            inputs.append(self.param(f"{name}.bias", self._normal((cout,), 0.1)))
        op = "ConvTranspose" if transpose else "Conv"
        return self.node(op, inputs, kernel_shape=list(kernel), group=group, **attrs)

    def bn(self, x: str, channels: int, epsilon: float = 1e-5) -> str:
        """BatchNormalization with randomized statistics (see ``random_bn_stats``)."""
        name = self.fresh("bn")
        stats = random_bn_stats(self.rng, channels)
        inputs = [
            x,
            self.param(f"{name}.scale", stats.scale),
            self.param(f"{name}.bias", stats.bias),
            self.param(f"{name}.mean", stats.mean),
            self.param(f"{name}.var", stats.var),
        ]
        return self.node("BatchNormalization", inputs, epsilon=epsilon)

    def gemm(self, x: str, cin: int, cout: int) -> str:
        """Gemm with a transposed weight, the way torch Linear exports."""
        name = self.fresh("fc")
        weight = self.param(f"{name}.weight", self._normal((cout, cin), np.sqrt(1.0 / cin)))
        bias = self.param(f"{name}.bias", self._normal((cout,), 0.1))
        return self.node("Gemm", [x, weight, bias], transB=1)

    def matmul_add(self, x: str, cin: int, cout: int) -> str:
        """MatMul + Add, the way tf2onnx writes a Dense layer."""
        name = self.fresh("dense")
        kernel = self.param(f"{name}.kernel", self._normal((cin, cout), np.sqrt(1.0 / cin)))
        bias = self.param(f"{name}.bias", self._normal((cout,), 0.1))
        return self.node("Add", [self.node("MatMul", [x, kernel]), bias])

    def classifier(self, x: str, channels: int, classes: int) -> str:
        """GlobalAveragePool → Flatten → Gemm."""
        return self.gemm(self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1), channels, classes)

    def model(
        self,
        inputs: Sequence[tuple[str, Sequence[Dim]]],
        output: str,
        output_shape: Sequence[Dim],
        *,
        default_ir: bool = False,
    ) -> onnx.ModelProto:
        """Wrap up, rename the last value to ``logits`` and check the result strictly.

        ``default_ir`` keeps ``make_model``'s IR version (the newest onnx knows);
        otherwise the lowest IR version the opset allows, as exporters write.
        """
        assert self.nodes[-1].output[0] == output, "the output must come from the last node"
        self.nodes[-1].output[0] = "logits"
        graph = helper.make_graph(
            self.nodes,
            "main",
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name, shape in inputs],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, list(output_shape))],
            initializer=self.initializers,
        )
        opsets = [helper.make_opsetid("", self.opset)]
        make = helper.make_model if default_ir else helper.make_model_gen_version
        model = make(graph, opset_imports=opsets, producer_name="kinetoscope-tests")
        onnx.checker.check_model(model, full_check=True)
        return model

    def _normal(self, shape: Sequence[int], std: float) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)


#: (bn_count, foldable_bn) each graph is built to have; the tests recount them from the file.
EXPECTED_BN: dict[str, tuple[int, int]] = {
    "weights_initializer": (2, 2),
    "weights_constant": (2, 2),
    "weights_identity": (2, 2),
    "dynamic_dims": (2, 2),
    "tf_nhwc_32": (2, 2),
    "tf_nhwc_33": (2, 2),
    "tf_ndhwc_32": (2, 2),
    "ceil_pools": (2, 2),
    **{f"opset_net@op{opset}": (1, 1) for opset in OPSETS},
    "unfoldable_bn": (4, 1),
}


def _record(name: str, model: onnx.ModelProto, inputs: list[str], notes: str) -> CorpusModel:
    """Counts come from ``EXPECTED_BN`` (intent); the corpus tests compare them with the graph."""
    bn_count, foldable_bn = EXPECTED_BN[name]
    return CorpusModel(name, model.SerializeToString(), inputs, bn_count, foldable_bn, notes)


# --- weight storage forms --------------------------------------------------------


def _conv_bn_net(b: GraphBuilder, x: str, classes: int = 10) -> str:
    """conv-BN-ReLU ×2 → pool → Gemm: the baseline most handmade graphs decorate."""
    y = b.node("Relu", [b.bn(b.conv(x, 3, 8, (3, 3), pads=[1, 1, 1, 1]), 8)])
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.node("Relu", [b.bn(b.conv(y, 8, 16, (3, 3), strides=[2, 2], pads=[1, 1, 1, 1]), 16)])
    return b.classifier(y, 16, classes)


def weights_as(form: WeightForm) -> CorpusModel:
    """Every parameter (conv, BN, Gemm) stored as ``form``."""
    b = GraphBuilder(seed=11, weights=form)
    out = _conv_bn_net(b, "rgb")
    model = b.model([("rgb", (1, 3, 32, 32))], out, (1, 10))
    notes = {
        "initializer": "parameters as initializers, the baseline for the other two forms",
        "constant": "parameters as Constant nodes, no initializers at all",
        "identity": "parameters as initializers read through Identity nodes",
    }[form]
    return _record(f"weights_{form}", model, ["rgb=1x3x32x32:image"], notes)


# --- symbolic dims ---------------------------------------------------------------


def dynamic_dims() -> CorpusModel:
    """paddle2onnx-style names for a free batch and free spatial dims."""
    b = GraphBuilder(seed=12, opset=11)
    out = _conv_bn_net(b, "rgb")
    batch = "p2o.DynamicDimension.0"
    model = b.model([("rgb", (batch, 3, "height", "width"))], out, (batch, 10))
    return _record(
        "dynamic_dims",
        model,
        ["rgb=1x3x32x32:image"],
        "batch p2o.DynamicDimension.0, spatial dims 'height'/'width'; the declaration gives the static shape",
    )


# --- tf2onnx channel-last --------------------------------------------------------


def tf_channels_last(size: int = 33, video: bool = False) -> CorpusModel:
    """NHWC / NDHWC input, Transpose to channels-first, SAME_UPPER strided convs and pools.

    SAME_UPPER with stride 2 pads asymmetrically (the extra pixel at the end), on odd
    sizes and even ones alike. tf2onnx's BN epsilon is 1e-3 and its Dense is MatMul+Add.
    """
    b = GraphBuilder(seed=13)
    spatial = 3 if video else 2
    if video:
        in_shape: tuple[int, ...] = (1, 8, size, size, 3)
        to_first, to_last = [0, 4, 1, 2, 3], [0, 2, 3, 4, 1]
        pool_kernel, pool_strides = [1, 3, 3], [1, 2, 2]
    else:
        in_shape = (1, size, size, 3)
        to_first, to_last = [0, 3, 1, 2], [0, 2, 3, 1]
        pool_kernel, pool_strides = [3, 3], [2, 2]
    k3, s2 = [3] * spatial, [2] * spatial
    y = b.node("Transpose", ["input_1"], perm=to_first)
    y = b.node("Relu", [b.bn(b.conv(y, 3, 8, k3, strides=s2, auto_pad="SAME_UPPER"), 8, epsilon=1e-3)])
    y = b.node("MaxPool", [y], kernel_shape=pool_kernel, strides=pool_strides, auto_pad="SAME_UPPER")
    y = b.node("Relu", [b.bn(b.conv(y, 8, 16, k3, strides=s2, auto_pad="SAME_UPPER"), 16, epsilon=1e-3)])
    y = b.node("Transpose", [y], perm=to_last)
    y = b.node("ReduceMean", [y], axes=list(range(1, spatial + 1)), keepdims=0)
    out = b.matmul_add(y, 16, 10)
    model = b.model([("input_1", in_shape)], out, (1, 10))
    dims = "x".join(map(str, in_shape))
    layout = "NDHWC" if video else "NHWC"
    return _record(
        f"tf_{layout.lower()}_{size}",
        model,
        [f"input_1={dims}:{'video' if video else 'image'}"],
        f"tf2onnx style: {layout} input, Transpose {to_first}, SAME_UPPER stride-2 conv/pool, MatMul+Add",
    )


# --- ceil_mode pooling -----------------------------------------------------------


def ceil_pools() -> CorpusModel:
    """MaxPool and AveragePool with ceil_mode=1 and asymmetric pads after conv-BN.

    Sizes are chosen so ceil mode adds a window that starts inside the data: torch
    and ONNX agree there, and only a correct ceil/pad conversion reproduces it.
    """
    b = GraphBuilder(seed=14, opset=17)
    y = b.node("Relu", [b.bn(b.conv("rgb", 3, 8, (3, 3), pads=[1, 1, 1, 1]), 8)])  # 31x31
    # (31 + 0 + 1 - 3) / 2 = 14.5 → 16 windows
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1)
    y = b.node("Relu", [b.bn(b.conv(y, 8, 12, (3, 3), pads=[1, 1, 1, 1], bias=False), 12)])  # 16x16
    # (16 + 1 + 0 - 2) / 2 = 7.5 → 9 windows, the last one partly past the edge
    y = b.node(
        "AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1, count_include_pad=0
    )
    out = b.classifier(y, 12, 10)
    model = b.model([("rgb", (1, 3, 31, 31))], out, (1, 10))
    return _record("ceil_pools", model, ["rgb=1x3x31x31:image"], "ceil_mode Max/AveragePool, asymmetric pads")


# --- one net across opsets -------------------------------------------------------


def opset_net(opset: int) -> CorpusModel:
    """Pad → conv-BN-ReLU → MaxPool → ReduceMean → Squeeze → Flatten → Gemm → Reshape.

    Written in each opset's own forms: Squeeze axes become an input at 13, ReduceMean
    axes an input at 18, Pad gains its ``axes`` input at 18. Opset 23 keeps
    ``make_model``'s IR version, newer than some runtimes accept.
    """
    b = GraphBuilder(seed=15, opset=opset)
    if opset >= 18:
        y = b.node("Pad", ["rgb", b.ints("pad.pads", [1, 1, 1, 1]), "", b.ints("pad.axes", [2, 3])])
    else:
        y = b.node("Pad", ["rgb", b.ints("pad.pads", [0, 0, 1, 1, 0, 0, 1, 1])])
    y = b.node("Relu", [b.bn(b.conv(y, 3, 8, (3, 3)), 8)])
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    if opset >= 18:
        y = b.node("ReduceMean", [y, b.ints("mean.axes", [2, 3])], keepdims=1)
    else:
        y = b.node("ReduceMean", [y], axes=[2, 3], keepdims=1)
    if opset >= 13:
        y = b.node("Squeeze", [y, b.ints("squeeze.axes", [3])])
    else:
        y = b.node("Squeeze", [y], axes=[3])
    y = b.gemm(b.node("Flatten", [y], axis=1), 8, 10)
    out = b.node("Reshape", [y, b.ints("logits.shape", [-1, 10])])
    model = b.model([("rgb", (1, 3, 32, 32))], out, (1, 10), default_ir=opset >= 23)
    return _record(
        f"opset_net@op{opset}",
        model,
        ["rgb=1x3x32x32:image"],
        f"opset {opset}, IR {model.ir_version}",
    )


# --- BNs that must not be folded -------------------------------------------------


def unfoldable_bn() -> CorpusModel:
    """BN on a graph input, BN on a conv output that is also read elsewhere, BN after Add.

    One foldable conv-BN (bias-less conv) stays as the control.
    """
    b = GraphBuilder(seed=16)
    x = b.bn("rgb", 3)  # on the graph input
    conv = b.conv(x, 3, 8, (3, 3), pads=[1, 1, 1, 1])
    act = b.node("Relu", [b.bn(conv, 8)])  # conv output is read twice
    y = b.node("Relu", [b.bn(b.node("Add", [conv, act]), 8)])  # after Add
    y = b.node("Relu", [b.bn(b.conv(y, 8, 8, (3, 3), strides=[2, 2], pads=[1, 1, 1, 1], bias=False), 8)])
    out = b.classifier(y, 8, 10)
    model = b.model([("rgb", (1, 3, 32, 32))], out, (1, 10))
    return _record(
        "unfoldable_bn", model, ["rgb=1x3x32x32:image"], "BN on input, on a multi-use conv, after Add; one foldable"
    )


def builders() -> dict[str, Callable[[], CorpusModel]]:
    """Name → zero-argument builder for every handmade graph."""
    table: dict[str, Callable[[], CorpusModel]] = {
        "weights_initializer": lambda: weights_as("initializer"),
        "weights_constant": lambda: weights_as("constant"),
        "weights_identity": lambda: weights_as("identity"),
        "dynamic_dims": dynamic_dims,
        "tf_nhwc_32": lambda: tf_channels_last(32),
        "tf_nhwc_33": lambda: tf_channels_last(33),
        "tf_ndhwc_32": lambda: tf_channels_last(32, video=True),
        "ceil_pools": ceil_pools,
        "unfoldable_bn": unfoldable_bn,
    }
    for opset in OPSETS:
        table[f"opset_net@op{opset}"] = lambda opset=opset: opset_net(opset)
    return table
