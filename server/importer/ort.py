"""onnxruntime sessions for verification (CPU, unoptimized, with IR-version lowering) and the graph edits sessions need.

onnx can write IR versions newer than the installed onnxruntime reads; the IR version
only gates file-format features, so a model whose opsets an older IR covers is
lowered to that IR instead of being refused.

A verification session is built from the graph without its big weights, which it
takes as inputs, fed as arrays onnxruntime reads in place: serializing the model for
onnxruntime to parse would hold two more copies of every weight at once, and takes
seconds on a large model.

Sessions that compute more than the graph's outputs run an edited copy of the graph:
intermediate tensors as extra outputs (verification), per-clip maxima after chosen
layers (recording), a symbolic batch axis (recording several clips per run).
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import ModelProto, TensorProto, numpy_helper

from .errors import InvalidModel
from .graph import INTERNAL_PREFIX, stored_nbytes, weight_bytes, without_initializers

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
                 input_shapes: Mapping[str, Sequence[int]] | None = None, threads: int = 0) -> WeightFedSession:
    """A CPU session computing the graph outputs and `extra_outputs` (intermediate tensors).

    Unoptimized, so every intermediate tensor keeps its name and its exact value.
    `input_shapes` runs the graph at other input shapes than it declares (the shapes
    inferred for the declared ones are dropped, so onnxruntime infers its own). `threads`:
    onnxruntime's intra-op threads (0: one per core).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
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
    options.log_severity_level = 4  # fatal only: a failed run is an exception this module reports in its own words
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


# -- graph edits: extra outputs, per-clip maxima, a dynamic batch axis


@dataclass(frozen=True)
class MaxReduction:
    """The maximum of tensor `name`, of rank `rank`, over `axes` (none: the tensor itself)."""

    name: str
    axes: tuple[int, ...]
    rank: int


def with_outputs(model: ModelProto, names: Iterable[str], *, dynamic_batch: bool = False) -> ModelProto:
    """`model` that also returns the tensors `names` (a copy, unless that changes nothing).

    With `dynamic_batch`, every data input's leading axis becomes symbolic and the shapes
    inferred at the declared batch are dropped (onnxruntime infers them again).
    """
    names, present = list(names), {out.name for out in model.graph.output}
    if dynamic_batch or any(name not in present for name in names):
        copy = ModelProto()
        copy.CopyFrom(model)
        return _add_outputs(copy, names, dynamic_batch)
    return model


def with_maxima(model: ModelProto, maxima: Sequence[MaxReduction], *,
                dynamic_batch: bool = False) -> tuple[ModelProto, list[str]]:
    """A copy of `model` that also returns each reduction, and the output name of each, in order.

    Reducing inside the session lets only [B, C] maxima leave it instead of whole
    activations, and onnxruntime reduces with its own threads.
    """
    copy = ModelProto()
    copy.CopyFrom(model)
    opset = next((o.version for o in copy.opset_import if o.domain in ("", "ai.onnx")), 0)
    outputs = [_append_max(copy, reduction, f"{INTERNAL_PREFIX}clip_max/{index}/{reduction.name}", opset)
               for index, reduction in enumerate(maxima)]
    return _add_outputs(copy, outputs, dynamic_batch), outputs


def _add_outputs(model: ModelProto, names: Iterable[str], dynamic_batch: bool) -> ModelProto:
    present = {out.name for out in model.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    if dynamic_batch:
        _dynamic_batch(model)
    return model


def _append_max(model: ModelProto, reduction: MaxReduction, name: str, opset: int) -> str:
    """Appends the node computing `reduction` as `name`; returns the tensor that holds it."""
    axes = list(reduction.axes)
    if not axes:
        return reduction.name
    if axes == list(range(2, reduction.rank)):
        # every axis after batch and channel: onnxruntime's pooling kernel does in one pass what its
        # ReduceMax does slower ([B, C, 1, ...] out; callers reshape)
        model.graph.node.append(onnx.helper.make_node("GlobalMaxPool", [reduction.name], [name], name=name))
        return name
    inputs = [reduction.name]
    attributes = {"keepdims": 0}
    if opset >= 18:
        inputs.append(f"{name}/axes")
        model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), inputs[-1]))
    else:
        attributes["axes"] = axes
    model.graph.node.append(onnx.helper.make_node("ReduceMax", inputs, [name], name=name, **attributes))
    return name


def _dynamic_batch(model: ModelProto) -> None:
    weights = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in weights and value.type.tensor_type.shape.dim:
            dim = value.type.tensor_type.shape.dim[0]
            dim.Clear()
            dim.dim_param = "batch"
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
