"""The two torch → ONNX export paths, configured so BatchNormalization survives.

Both exporters fold Conv→BN by default, which would leave the importer's folding
code untested:

* TorchScript (``dynamo=False``) fuses BN in its eval-mode peephole pass, which only
  runs when ``training`` is ``EVAL`` *and* constant folding is on. Exporting with
  ``training=TrainingMode.PRESERVE`` skips the pass; the module itself is in eval mode,
  so BN is still exported in inference form. Constant folding stays on for the rest
  of the graph, as in ordinary exports.
* dynamo (``dynamo=True``) fuses BN in onnxscript's rewrite rules run by
  ``optimize=True``; ``optimize=False`` skips the whole optimizer. The unoptimized
  graph is not usable as is, though: onnxscript 0.7's ``aten_conv3d`` builds the zero
  bias of a ``bias=False`` Conv3d with shape ``[C, 2]``, which onnxruntime rejects.
  So the unoptimized graph gets the two optimizer steps that clean it up without
  touching BN: constant folding, then dropping all-zero Conv/ConvTranspose biases.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Iterator

import onnx
import onnxscript
import torch
from onnx_ir import serde
from onnxscript.rewriter.rules.common import (
    remove_optional_bias_from_conv_rule,
    remove_optional_bias_from_conv_transpose_rule,
)
from torch import nn

OUTPUT_NAME = "logits"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation and PRESERVE-mode warnings and progress lines."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def export_torchscript(
    module: nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str], opset: int
) -> bytes:
    """Legacy TorchScript exporter at ``opset``, BN kept."""
    buffer = io.BytesIO()
    with _quiet():
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=[OUTPUT_NAME],
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    return buffer.getvalue()


def export_dynamo(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    opset: int | None = None,
    optimize: bool = False,
) -> bytes:
    """torch.export-based exporter; ``opset=None`` keeps its default (20 in torch 2.14).

    ``optimize=True`` gives what users get by default: BN folded away entirely.
    Otherwise BN is kept and only the BN-neutral clean-up described above runs.
    """
    with _quiet():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            opset_version=opset,
            input_names=input_names,
            output_names=[OUTPUT_NAME],
            optimize=optimize,
            verbose=False,
        )
    model = program.model
    if not optimize:
        onnxscript.optimizer.fold_constants(model)
        model = onnxscript.rewriter.rewrite(
            model, [remove_optional_bias_from_conv_rule, remove_optional_bias_from_conv_transpose_rule]
        )
        onnxscript.optimizer.remove_unused_nodes(model)
    proto: onnx.ModelProto = serde.serialize_model(model)
    return proto.SerializeToString()
