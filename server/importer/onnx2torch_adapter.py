"""Everything kinetoscope needs from onnx2torch beyond its public `convert`, in one place.

onnx2torch (pinned in pyproject.toml) offers `convert(model)` and a registry its own
`add_converter` fills once. Kinetoscope needs three things more:

* to replace converters onnx2torch gets wrong, which its `add_converter` refuses, so
  `register` writes the registry dict itself (at import, under the import lock);
* to ask whether a converter exists without catching `NotImplementedError` (`registered`);
* to build the torch.fx module from a graph whose shapes are already inferred (on a
  skeleton, so models over 2 GiB work): onnx2torch's `convert` runs shape inference
  first, serializing the whole model again. `build_module` is that function's body,
  without the inference, using onnx2torch's own graph types and per-node converters.
  Swapping `onnx2torch.converter.safe_shape_inference` around a `convert` call instead
  would change a module global that every thread of the server shares.

No other module touches onnx2torch's private names (tests/packaging checks the tree).
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from operator import getitem
from typing import Mapping

import numpy as np
import torch
from onnx import GraphProto, ModelProto, TensorProto, defs
from onnx2torch.converter import InitializersContainer
from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, OperationDescription, TConverter
from onnx2torch.onnx_graph import OnnxGraph, ValueType
from onnx2torch.onnx_tensor import OnnxTensor
from torch import fx, nn

__all__ = ["OperationDescription", "TConverter", "build_module", "graph_view", "operation", "register", "registered"]

MIN_IR_VERSION = 3
"""The oldest ONNX IR onnx2torch converts."""


def operation(operation_type: str, version: int, domain: str = defs.ONNX_DOMAIN) -> OperationDescription:
    """The registry's key for one op at the since_version of its schema."""
    return OperationDescription(domain=domain, operation_type=operation_type, version=version)


def registered(key: OperationDescription) -> TConverter | None:
    """The converter onnx2torch would use for exactly this key, ours or its own; None when there is none."""
    return _CONVERTER_REGISTRY.get(key)


def register(key: OperationDescription, converter: TConverter) -> None:
    """Installs `converter` for `key`, over onnx2torch's own if it has one (the caller decides whether it may)."""
    _CONVERTER_REGISTRY[key] = converter


def build_module(model: ModelProto, *, attach_onnx_mapping: bool = True,
                 unwritten: Mapping[str, np.ndarray] | None = None) -> fx.GraphModule:
    """onnx2torch's `convert` on a model whose shapes are already inferred: one torch module per node, in graph order.

    Raises NotImplementedError, as onnx2torch does, for an op it has no converter for.
    """
    if model.ir_version < MIN_IR_VERSION:
        raise NotImplementedError(f"ONNX IR {model.ir_version} is too old (onnx2torch needs {MIN_IR_VERSION} or newer)")
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    onnx_graph = graph_view(model, unwritten)
    builder = _Builder(onnx_graph)
    for name, node in onnx_graph.nodes.items():
        converter = _converter(node.operation_type, opsets[node.domain], node.domain)
        torch_module, mapping = converter(node, onnx_graph)
        if attach_onnx_mapping:
            torch_module.onnx_mapping = mapping
        builder.add(name, torch_module, mapping.inputs)
    return builder.finish()


def graph_view(model: ModelProto, unwritten: Mapping[str, np.ndarray] | None = None) -> OnnxGraph:
    """onnx2torch's view of the graph, as its converters take it; graph inputs that name a weight count as weights.

    `unwritten`: the values of initializers the graph holds without bytes (fold_bn.py)."""
    return _Graph(model.graph, unwritten or {})


def _converter(operation_type: str, opset: int, domain: str) -> TConverter:
    try:
        version = defs.get_schema(operation_type, domain=domain, max_inclusive_version=opset).since_version
    except (RuntimeError, defs.SchemaError):
        version = opset
    converter = registered(operation(operation_type, version, domain))
    if converter is None:
        raise NotImplementedError(f"Converter is not implemented ({operation(operation_type, version, domain)})")
    return converter


class _Graph(OnnxGraph):
    """onnx2torch's graph view, with graph inputs that name an initializer read as initializers.

    Older exporters list weights among the graph inputs; onnx2torch's `convert` deletes those
    inputs from the model it is given. This view leaves the caller's model as it is.
    """

    def __init__(self, proto: GraphProto, unwritten: Mapping[str, np.ndarray]) -> None:
        super().__init__(proto)
        self._initializers = {name: _Weight(tensor.proto, unwritten.get(name)) for name, tensor in self._initializers.items()}
        weights = self._initializers
        self._input_values = tuple(name for name in self._input_values if name not in weights)


_RAW_DTYPES = {TensorProto.FLOAT: torch.float32, TensorProto.DOUBLE: torch.float64, TensorProto.FLOAT16: torch.float16,
               TensorProto.BFLOAT16: torch.bfloat16, TensorProto.INT64: torch.int64, TensorProto.INT32: torch.int32}


class _Weight(OnnxTensor):
    """An initializer as a tensor over one copy of its bytes.

    onnx2torch's `to_torch` copies the array numpy already copied out of the protobuf; on a
    126 MB model that second copy, into fresh pages, took a fifth of the conversion. The one
    copy here is the bytes object the protobuf hands out, which nothing else holds, so the
    tensor may own it even though Python calls it read-only.
    """

    def __init__(self, proto: TensorProto, values: np.ndarray | None = None) -> None:
        super().__init__(proto)
        self.values = values
        """The initializer's values where the graph holds it without bytes (fold_bn.py); the tensor shares them."""

    def to_numpy(self) -> np.ndarray:
        return self.values.copy() if self.values is not None else super().to_numpy()

    def to_torch(self) -> torch.Tensor:
        if self.values is not None:
            return torch.from_numpy(self.values)
        proto = self.proto
        dtype = _RAW_DTYPES.get(proto.data_type)
        if (dtype is None or sys.byteorder != "little" or not proto.HasField("raw_data")
                or proto.data_location == TensorProto.EXTERNAL):
            return super().to_torch()
        raw = proto.raw_data
        shape = tuple(proto.dims)
        if not raw or len(raw) != math.prod(shape) * dtype.itemsize:
            return super().to_torch()  # empty, or a size numpy's reading reports better
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given buffer is not writable")
            return torch.frombuffer(raw, dtype=dtype).reshape(shape)


class _Builder:
    """The fx graph under construction: placeholders, one call_module per node, getattr for initializers."""

    def __init__(self, onnx_graph: OnnxGraph) -> None:
        self.onnx_graph = onnx_graph
        self.graph = fx.Graph()
        self.initializers = InitializersContainer()
        self.modules = nn.Module()
        self.modules.add_module("initializers", self.initializers)
        self.nodes: dict[str, fx.Node] = {
            name: self.graph.placeholder(name=f"input_{n}") for n, name in enumerate(onnx_graph.input_values, 1)
        }
        self.buffers = 0

    def add(self, name: str, torch_module: nn.Module, inputs: tuple[str, ...]) -> None:
        self.modules.add_module(name, torch_module)
        args = [self._value(value_name) for value_name in inputs]
        kwargs = {}
        if None in args:  # skipped optional inputs: the ones after them go by keyword
            first = args.index(None)
            names = tuple(inspect.signature(torch_module.forward).parameters)[first : len(args)]
            args, rest = args[:first], args[first:]
            kwargs = {key: value for key, value in zip(names, rest) if value is not None}
        self.nodes[name] = self.graph.call_module(module_name=name, args=tuple(args), kwargs=kwargs)

    def _value(self, value_name: str) -> fx.Node | None:
        kind = self.onnx_graph.value_type(value_name)
        if kind == ValueType.GRAPH_INPUT:
            return self.nodes[value_name]
        if kind == ValueType.NODE_OUTPUT:
            producer, _ = self.onnx_graph.value_as_node_output(value_name)
            node = self.nodes[producer.unique_name]
            if len(producer.output_values) > 1:
                node = self.graph.call_function(getitem, args=(node, producer.output_values.index(value_name)))
            return node
        if kind == ValueType.GRAPH_INITIALIZER:
            return self._initializer(value_name)
        if kind == ValueType.EMPTY:
            return None
        raise RuntimeError(f"unexpected ONNX value type {kind} of {value_name!r}")

    def _initializer(self, value_name: str) -> fx.Node:
        """A new buffer per use, as onnx2torch makes them (buffer names may not hold dots)."""
        buffer = f"onnx_initializer_{self.buffers}"
        self.buffers += 1
        self.initializers.add_initializer(buffer, self.onnx_graph.initializers[value_name].to_torch())
        return self.graph.get_attr(f"initializers.{buffer}")

    def finish(self) -> fx.GraphModule:
        producers = [self.onnx_graph.value_as_node_output(name)[0] for name in self.onnx_graph.output_values]
        outputs = [self.nodes[node.unique_name] for node in dict.fromkeys(producers)]
        self.graph.output(outputs[0] if len(outputs) == 1 else outputs)
        self.graph.lint()
        return fx.GraphModule(root=self.modules, graph=self.graph)
