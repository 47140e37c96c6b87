"""onnxruntime sessions for verification: CPU, unoptimized, with IR-version lowering.

onnx can write IR versions newer than the installed onnxruntime reads; the IR version
only gates file-format features, so a model whose opsets an older IR covers is
lowered to that IR instead of being refused.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Iterable

import onnx
import onnxruntime as ort
from onnx import ModelProto

from .errors import InvalidModel
from .graph import weight_bytes

_LOGGER = logging.getLogger(__name__)
_PROTO_LIMIT = (2 << 30) - (64 << 20)


def make_session(model: ModelProto, extra_outputs: Iterable[str] = ()) -> ort.InferenceSession:
    """A CPU session computing the graph outputs and `extra_outputs` (intermediate tensors).

    Unoptimized, so every intermediate tensor keeps its name and its exact value.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return open_session(with_outputs(model, extra_outputs), options)
    except InvalidModel:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise InvalidModel(f"onnxruntime cannot load the model: {exc}", stage="verify") from None


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
