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
import zlib
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

from .common import CorpusModel
from .torch_nets import TorchSpec, randomize_batchnorm

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


# --- corpus entries ----------------------------------------------------------------

#: Export variant → (exporter name, opset or None for the default, optimize).
VARIANTS: dict[str, tuple[str, int | None, bool]] = {
    "ts11": ("torchscript", 11, False),
    "ts13": ("torchscript", 13, False),
    "ts17": ("torchscript", 17, False),
    "dynamo": ("dynamo", None, False),
    "dynamo18": ("dynamo", 18, False),
    "dynamo_opt": ("dynamo", None, True),
}


def seeded_module(spec: TorchSpec) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The eval-mode module behind every export of ``spec`` and its example inputs.

    Seeded from the family name, so the same weights can be rebuilt to compare outputs.
    """
    seed = zlib.crc32(spec.name.encode())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = randomize_batchnorm(spec.build(), seed)
    return module, spec.example_inputs(seed)


def build_exported(spec: TorchSpec, variant: str) -> CorpusModel:
    """Build ``spec`` with seeded weights and random BN statistics, export it as ``variant``.

    With ``dynamo_opt`` the exporter folds every foldable BN, so only the others remain.
    """
    exporter, opset, optimize = VARIANTS[variant]
    module, args = seeded_module(spec)
    names = [name for name, _, _ in spec.inputs]
    if exporter == "torchscript":
        assert opset is not None
        data = export_torchscript(module, args, names, opset)
    else:
        data = export_dynamo(module, args, names, opset, optimize=optimize)
    bn_count, foldable = spec.bn_count, spec.foldable_bn
    if optimize:
        bn_count, foldable = bn_count - foldable, 0
    opset_used = onnx.load_from_string(data).opset_import
    default_opset = next(entry.version for entry in opset_used if entry.domain in ("", "ai.onnx"))
    return CorpusModel(
        name=f"{spec.name}@{variant}",
        onnx=data,
        inputs=[f"{name}={'x'.join(map(str, shape))}:{kind}" for name, shape, kind in spec.inputs],
        bn_count=bn_count,
        foldable_bn=foldable,
        notes=f"{spec.notes}; {exporter} exporter, opset {default_opset}" + (", optimized" if optimize else ""),
    )
