"""onnxruntime sessions for verification: CPU, unoptimized, with IR-version lowering.

onnx can write IR versions newer than the installed onnxruntime reads; the IR version
only gates file-format features, so a model whose opsets an older IR covers is
lowered to that IR instead of being refused.

A verification session is built from the graph without its big weights, which it
takes as inputs, fed as arrays onnxruntime reads in place: serializing the model for
onnxruntime to parse would hold two more copies of every weight at once, and takes
seconds on a large model.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import ModelProto, TensorProto, numpy_helper

from .errors import InvalidModel
from .graph import stored_nbytes, weight_bytes, without_initializers

_LOGGER = logging.getLogger(__name__)
_PROTO_LIMIT = (2 << 30) - (64 << 20)
_FED_MIN_BYTES = 64 << 10
"""Initializers at least this large are fed to onnxruntime as inputs rather than kept inside the graph."""
_FED_TYPES = frozenset({
    TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.UINT8,
    TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32, TensorProto.UINT32, TensorProto.INT64,
    TensorProto.UINT64, TensorProto.BOOL,
})


class WeightFedSession:
    """An onnxruntime session that takes the graph's big weights as inputs, fed with every run.

    onnxruntime reads input arrays in place, where it copies initializers it is given."""

    def __init__(self, session: ort.InferenceSession, weights: dict[str, np.ndarray]) -> None:
        self.session = session
        self.weights = weights

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(output_names, {**feeds, **self.weights})

    def get_outputs(self):
        return self.session.get_outputs()

    def get_inputs(self):
        return [value for value in self.session.get_inputs() if value.name not in self.weights]


def make_session(model: ModelProto, extra_outputs: Iterable[str] = (),
                 input_shapes: Mapping[str, Sequence[int]] | None = None) -> WeightFedSession:
    """A CPU session computing the graph outputs and `extra_outputs` (intermediate tensors).

    Unoptimized, so every intermediate tensor keeps its name and its exact value.
    `input_shapes` runs the graph at other input shapes than it declares (the shapes
    inferred for the declared ones are dropped, so onnxruntime infers its own).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    light, weights = _split_weights(model)
    if input_shapes:
        _reshape_inputs(light, input_shapes)
    try:
        return WeightFedSession(open_session(with_outputs(light, extra_outputs), options), weights)
    except InvalidModel:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise InvalidModel(f"onnxruntime cannot load the model: {exc}", stage="verify") from None


def _split_weights(model: ModelProto) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """The graph with its big initializers turned into typed inputs, and those initializers as arrays."""
    light = without_initializers(model)
    declared = {value.name for value in light.graph.input}
    weights: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        if stored_nbytes(init) < _FED_MIN_BYTES or init.data_type not in _FED_TYPES or init.name in weights:
            light.graph.initializer.append(init)
            continue
        weights[init.name] = numpy_helper.to_array(init)
        if init.name not in declared:
            light.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light, weights


def _reshape_inputs(model: ModelProto, shapes: Mapping[str, Sequence[int]]) -> None:
    graph = model.graph
    for value in graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            del dims[:]
            for size in shapes[value.name]:
                dims.add(dim_value=int(size))
    del graph.value_info[:]
    for value in graph.output:
        value.type.tensor_type.ClearField("shape")


def open_session(model: ModelProto, options: ort.SessionOptions) -> ort.InferenceSession:
    """A CPU session with `options`, lowering an IR version newer than onnxruntime reads, for any model size."""
    options.log_severity_level = 3
    try:
        return _session(model, options)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        if "IR version" not in str(exc) and "ir_version" not in str(exc).lower():
            raise
        return _session(lower_ir_version(model, str(exc)), options)


def _session(model: ModelProto, options: ort.SessionOptions) -> ort.InferenceSession:
    providers = ["CPUExecutionProvider"]
    if weight_bytes(model) < _PROTO_LIMIT:
        return ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    with tempfile.TemporaryDirectory(prefix="kinetoscope-ort-") as folder:
        path = Path(folder) / "model.onnx"
        onnx.save_model(model, path, save_as_external_data=True, location="weights.bin")
        return ort.InferenceSession(str(path), options, providers=providers)


def lower_ir_version(model: ModelProto, message: str = "") -> ModelProto:
    """The same model at the lowest IR version its opsets need, if onnxruntime reads that."""
    needed = onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    supported = re.search(r"max supported IR version:\s*(\d+)", message)
    if supported and needed > int(supported.group(1)):
        raise InvalidModel(
            f"the model needs ONNX IR version {needed} for its opsets, but onnxruntime {ort.__version__} "
            f"reads up to {supported.group(1)}",
            stage="verify",
        )
    lowered = ModelProto()
    lowered.CopyFrom(model)
    _LOGGER.info("lowering IR version %d -> %d for onnxruntime %s", model.ir_version, needed, ort.__version__)
    lowered.ir_version = needed
    return lowered


def with_outputs(model: ModelProto, names: Iterable[str]) -> ModelProto:
    names = [n for n in names if n not in {out.name for out in model.graph.output}]
    if not names:
        return model
    copy = ModelProto()
    copy.CopyFrom(model)
    for name in names:
        copy.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return copy
