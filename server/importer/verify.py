"""Prove the torch graph computes what onnxruntime computes on the original model.

Both run on the same seeded random inputs drawn from each input's value range; the
error per output is max |Δ| (absolute) and max |Δ| / max |ref| (relative). Above
tolerance, the first intermediate tensor that diverges is named, so a wrong converter
can be found at once. Gradients w.r.t. every input must be finite and non-zero, or
activation maximization could not move the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import ModelProto

from .capture import capture
from .convert import tensor_sources
from .errors import ParityError
from .graph import producers
from .inputs import DEFAULT_RANGE, InputSpec
from .ort import make_session

_STAGE = "verify"


@dataclass(frozen=True)
class Parity:
    max_abs_err: float
    max_rel_err: float
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per graph output: {"max_abs_err", "max_rel_err"}."""
    gradient_norms: dict[str, float] = field(default_factory=dict)
    """Per graph input: the L2 norm of d(sum of outputs)/d(input), finite and > 0."""


def random_inputs(original: ModelProto, specs: list[InputSpec], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    types = {value.name: value.type.tensor_type.elem_type for value in original.graph.input}
    feeds = {}
    for spec in specs:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(types[spec.name])
        lo, hi = spec.value_range or DEFAULT_RANGE
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.uniform(lo, hi, size=spec.shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, size=spec.shape).astype(dtype)
    return feeds


def verify(
    original: ModelProto,
    converted: ModelProto,
    module: torch.nn.Module,
    specs: list[InputSpec],
    *,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> Parity:
    feeds = random_inputs(original, specs, seed)
    output_names = [out.name for out in original.graph.output]
    reference = make_session(original).run(output_names, feeds)
    with torch.no_grad():
        produced = _as_list(module(*[torch.from_numpy(feeds[s.name]) for s in specs]))
    errors = {name: _errors(ref, got) for name, ref, got in zip(output_names, reference, produced)}
    worst_rel = max((e["max_rel_err"] for e in errors.values()), default=0.0)
    worst_abs = max((e["max_abs_err"] for e in errors.values()), default=0.0)
    if not worst_rel <= tolerance:
        raise ParityError(_divergence(original, converted, module, specs, feeds, tolerance, worst_rel), stage=_STAGE)
    gradients = _gradient_norms(module, specs, feeds)
    return Parity(max_abs_err=worst_abs, max_rel_err=worst_rel, outputs=errors, gradient_norms=gradients)


def _errors(reference: np.ndarray, produced: torch.Tensor) -> dict[str, float]:
    ref = np.asarray(reference, dtype=np.float64)
    got = produced.detach().to(torch.float64).numpy()
    if ref.shape != got.shape:
        return {"max_abs_err": float("inf"), "max_rel_err": float("inf")}
    if ref.size == 0:
        return {"max_abs_err": 0.0, "max_rel_err": 0.0}
    diff = float(np.max(np.abs(ref - got)))
    scale = float(np.max(np.abs(ref)))
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    return {"max_abs_err": diff, "max_rel_err": rel}


def _divergence(original, converted, module, specs, feeds, tolerance: float, worst: float) -> str:
    """Name the first tensor, in graph order, where torch and onnxruntime disagree."""
    shared = {o for n in original.graph.node for o in n.output}
    sources = tensor_sources(module)
    names = [o for n in converted.graph.node for o in n.output if o in shared and o in sources]
    header = f"the torch graph differs from onnxruntime by {worst:.3g} (relative; tolerance {tolerance:g})"
    if not names:
        return header
    reference = dict(zip(names, make_session(original, names).run(names, feeds)))
    with capture(module, names) as seen, torch.no_grad():
        module(*[torch.from_numpy(feeds[s.name]) for s in specs])
    made_by = producers(converted.graph)
    for name in names:
        if name in seen and np.issubdtype(np.asarray(reference[name]).dtype, np.floating):
            err = _errors(reference[name], seen[name])["max_rel_err"]
            if not err <= tolerance:
                node = made_by[name]
                return f"{header}; it first diverges at layer {name!r} ({node.op_type} node {node.name!r}): {err:.3g}"
    return header


def _gradient_norms(module: torch.nn.Module, specs: list[InputSpec], feeds) -> dict[str, float]:
    tensors = [torch.from_numpy(feeds[s.name]).clone().requires_grad_(True) for s in specs]
    outputs = _as_list(module(*tensors))
    generator = torch.Generator().manual_seed(0)
    total = sum((o * torch.rand(o.shape, generator=generator)).sum() for o in outputs if o.is_floating_point())
    total.backward()
    norms = {}
    for spec, tensor in zip(specs, tensors):
        grad = tensor.grad
        norm = float(grad.norm()) if grad is not None else 0.0
        if not np.isfinite(norm) or norm == 0.0:
            raise ParityError(
                f"the gradient of the outputs w.r.t. input {spec.name!r} is {'zero' if norm == 0 else 'not finite'}; "
                "activation maximization needs a usable gradient",
                stage=_STAGE,
            )
        norms[spec.name] = norm
    return norms


def _as_list(outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return list(outputs)
