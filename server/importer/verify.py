"""Prove the torch graph computes what onnxruntime computes on the original model.

Both run on the same seeded random inputs drawn from each input's value range; the
error per output is max |Δ| (absolute) and max |Δ| / max |ref| (relative). Above
tolerance, the first intermediate tensor that diverges is named, so a wrong converter
can be found at once. Every declared output is compared (integer and bool ones
exactly), and the torch graph must return exactly the outputs the model declares.
Gradients w.r.t. every float input must be finite and non-zero, or activation
maximization could not move the input.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
import torch
from onnx import ModelProto

from kinetoscope.common import DEFAULT_RANGE, InputSpec

from .capture import capture
from .convert import tensor_sources
from .errors import ParityError
from .graph import producers
from .ort import make_session
from .probe import gradient_probe_specs, probe_specs

_STAGE = "verify"
_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parity:
    max_abs_err: float
    max_rel_err: float
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per graph output: {"max_abs_err", "max_rel_err"}."""
    gradient_norms: dict[str, float] = field(default_factory=dict)
    """Per float graph input: the L2 norm of d(projected float outputs)/d(input), finite and > 0."""
    gradient_scale: float = 1.0
    """The factor the declared input ranges were scaled by to measure those gradients (< 1 where the
    model saturates at its declared range)."""
    probe_shapes: dict[str, list[int]] = field(default_factory=dict)
    """Per input, the shape of the probe the outputs were compared on (see probe.py)."""
    gradient_probe_shapes: dict[str, list[int]] = field(default_factory=dict)
    """Per input, the shape of the probe the gradients were measured on: smaller still, or the same."""


def random_inputs(original: ModelProto, specs: list[InputSpec], seed: int = 0) -> dict[str, np.ndarray]:
    types = {value.name: value.type.tensor_type.elem_type for value in original.graph.input}
    return _draw({s.name: onnx.helper.tensor_dtype_to_np_dtype(types[s.name]) for s in specs}, specs, seed)


def _draw(dtypes: dict[str, np.dtype], specs: list[InputSpec], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        dtype = dtypes[spec.name]
        lo, hi = spec.value_range or DEFAULT_RANGE
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.uniform(lo, hi, size=spec.shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, size=spec.shape).astype(dtype)
    return feeds


@dataclass
class Reference:
    """What onnxruntime computes on the original model for the seeded probe: all verification needs of it."""

    specs: list[InputSpec]
    """The inputs the probe was drawn for: the declared ones, or smaller (see probe.py)."""
    feeds: dict[str, np.ndarray]
    output_names: list[str]
    outputs: list[np.ndarray]


def reference_run(original: ModelProto, specs: list[InputSpec], seed: int = 0, *, smaller: bool = True) -> Reference:
    """onnxruntime's outputs on one seeded random probe, smaller than declared where the graph runs at that size.

    The session is dropped at once, its weights with it: taken before the graph is
    normalized, the original model need not be kept beside the normalized one."""
    if not smaller:
        return _reference_at(original, specs, seed)
    return start_reference(original, specs, lambda: original, seed, background=False)()


def _reference_at(original: ModelProto, specs: list[InputSpec], seed: int) -> Reference:
    return _prepared(original, specs, seed)()


def _prepared(original: ModelProto, specs: list[InputSpec], seed: int, threads: int = 0) -> Callable[[], Reference]:
    """The reference's session, built now from `original`; calling the result runs it (without `original`)."""
    feeds = random_inputs(original, specs, seed)
    output_names = [out.name for out in original.graph.output]
    declared = {value.name: _declared_shape(value) for value in original.graph.input}
    shapes = {s.name: s.shape for s in specs if declared.get(s.name) != tuple(s.shape)}
    session = make_session(original, input_shapes=shapes, threads=threads)
    _check_output_names(output_names, [out.name for out in session.get_outputs()], "onnxruntime's session")
    return lambda: Reference(specs=list(specs), feeds=feeds, output_names=output_names,
                             outputs=session.run(output_names, feeds))


def start_reference(original: ModelProto, specs: list[InputSpec], reload: Callable[[], ModelProto],
                    seed: int = 0, *, background: bool = True) -> Callable[[], Reference]:
    """reference_run's reference, its session built now and its run going on in another thread while the caller
    goes on (onnxruntime lets go of the GIL), so `original` may change once this returns. Calling the result waits
    for the run. A smaller probe that fails to run is drawn again at the declared size on `reload()`, the original
    model parsed anew. In the background onnxruntime leaves a core to the caller: on two cores its two threads
    and the caller's took 0.59 s for a 126 MB model's import, one 0.49 s (0.61 s one after the other). Without
    `background` it runs on every core before this returns: the session holds a copy of every weight, which a
    large model should drop before folding makes another."""
    threads = max(1, (os.cpu_count() or 2) - 1) if background else 0  # a core left for the caller's work meanwhile
    cut = probe_specs(specs, original)
    smaller = _shapes(cut) != _shapes(specs)
    run = None
    if smaller:
        try:
            run = _prepared(original, cut, seed, threads)
        except Exception as exc:  # noqa: BLE001 - any failure at the smaller size means: use the declared one
            _LOGGER.info("verifying at the declared input size: %s", _first_line(str(exc)))
            smaller = False
    if run is None:
        run = _prepared(original, specs, seed, threads)
    outcome: list = []

    def work() -> None:
        try:
            outcome.append(run())
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread (or to the fallback below)
            outcome.append(exc)

    worker = threading.Thread(target=work, name="kinetoscope-reference", daemon=True) if background else None
    if worker is not None:
        worker.start()
    else:
        work()
        del run  # the session and its copy of the weights go now

    def result() -> Reference:
        if worker is not None:
            worker.join()
        if not isinstance(outcome[0], Exception):
            return outcome[0]
        if not smaller:
            raise outcome[0]
        _LOGGER.info("verifying at the declared input size: %s", _first_line(str(outcome[0])))
        return _reference_at(reload(), specs, seed)

    return result


def verify(
    original: ModelProto,
    converted: ModelProto,
    module: torch.nn.Module,
    specs: list[InputSpec],
    *,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> Parity:
    return check_parity(reference_run(original, specs, seed), lambda: original, converted, module, specs,
                        tolerance=tolerance, seed=seed)


def check_parity(
    reference: Reference,
    original: Callable[[], ModelProto],
    converted: ModelProto,
    module: torch.nn.Module,
    specs: list[InputSpec],
    *,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> Parity:
    """Compare the torch graph with `reference`, then check its gradients on the same forward pass.

    A probe smaller than declared that fails in any way is not a verdict: the graph is
    then verified at its declared size, against onnxruntime on `original()` (the
    original model, parsed again), and only that verdict counts. `original` also serves
    to locate a divergence."""
    _check_output_names(reference.output_names, [out.name for out in converted.graph.output], "the converted graph")
    if _shapes(reference.specs) != _shapes(specs):
        gradient_specs = gradient_probe_specs(specs, converted)
        try:
            return _certify(reference, None, module, _with_ranges(reference.specs, specs), tolerance, seed,
                            gradient_specs)
        except Exception as exc:  # noqa: BLE001 - any failure at the smaller size means: use the declared one
            _LOGGER.info("verifying again at the declared input size: %s", _first_line(str(exc)))
        reference = reference_run(original(), specs, seed, smaller=False)
    feeds = reference.feeds
    return _certify(reference, lambda worst: _divergence(original(), converted, module, specs, feeds, tolerance, worst),
                    module, specs, tolerance, seed, specs)


def _certify(reference: Reference, locate: Callable[[float], str] | None, module: torch.nn.Module,
             specs: list[InputSpec], tolerance: float, seed: int, gradient_specs: list[InputSpec]) -> Parity:
    """Parity of every declared output on the probe, then gradients: on `gradient_specs` where those are smaller
    and the graph runs there, else from the parity probe's own forward pass."""
    output_names = reference.output_names
    apart = _shapes(gradient_specs) != _shapes(specs)
    tensors = _probe_tensors(reference.feeds, specs, track=not apart)
    with torch.set_grad_enabled(not apart):
        produced = _as_list(module(*tensors))
    if len(produced) != len(output_names):
        raise ParityError(
            f"the torch graph returns {len(produced)} output(s) but the model declares {len(output_names)} "
            f"({', '.join(map(repr, output_names))}); every declared output must be computed", stage=_STAGE)
    errors = {name: _errors(ref, got) for name, ref, got in zip(output_names, reference.outputs, produced)}
    worst_rel = max((e["max_rel_err"] for e in errors.values()), default=0.0)
    worst_abs = max((e["max_abs_err"] for e in errors.values()), default=0.0)
    if not worst_rel <= tolerance:
        del produced, tensors
        header = f"the torch graph differs from onnxruntime by {worst_rel:.3g} (relative; tolerance {tolerance:g})"
        raise ParityError(locate(worst_rel) if locate else header, stage=_STAGE)
    dtypes = {name: feed.dtype for name, feed in reference.feeds.items()}
    first = _gradients_on(module, dtypes, gradient_specs, seed) if apart else None
    if first is None or first[1] is not None:
        # One forward pass served parity and gradients, or the graph did not run at the gradient probe, or some
        # input's gradient was unusable there: the parity probe decides, as it would have alone.
        if apart:
            del produced
            tensors = _probe_tensors(reference.feeds, specs)
            produced = _as_list(module(*tensors))
        gradient_specs = specs
        first = _gradients_of(produced, specs, tensors)
    del produced, tensors
    gradients = _gradient_norms(module, dtypes, gradient_specs, seed, first)
    return Parity(max_abs_err=worst_abs, max_rel_err=worst_rel, outputs=errors, gradient_norms=gradients.norms,
                  gradient_scale=gradients.scale, probe_shapes={s.name: list(s.shape) for s in specs},
                  gradient_probe_shapes={s.name: list(s.shape) for s in gradient_specs})


def _gradients_on(module: torch.nn.Module, dtypes: dict[str, np.dtype], specs: list[InputSpec], seed: int):
    """`_gradients_of` on seeded inputs of `specs`' shapes, or None where the graph fails to run at them."""
    tensors = _probe_tensors(_draw(dtypes, specs, seed), specs)
    try:
        outputs = _as_list(module(*tensors))
    except Exception as exc:  # noqa: BLE001 - any failure here means: measure on the parity probe instead
        _LOGGER.info("measuring gradients on the parity probe: %s", _first_line(str(exc)))
        return None
    return _gradients_of(outputs, specs, tensors)


def _shapes(specs: list[InputSpec]) -> list[tuple[int, ...]]:
    return [tuple(s.shape) for s in specs]


def _with_ranges(probe: list[InputSpec], specs: list[InputSpec]) -> list[InputSpec]:
    """The probe's shapes with the declared specs' ranges, kinds and layouts (as described after normalization)."""
    shapes = {s.name: s.shape for s in probe}
    return [s.with_(shape=shapes[s.name]) for s in specs]


def _declared_shape(value) -> tuple[int, ...] | None:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:300]


def _probe_tensors(feeds: dict[str, np.ndarray], specs: list[InputSpec], track: bool = True) -> list[torch.Tensor]:
    """The probe as torch inputs, float ones tracking gradients with `track` (then one forward serves parity and
    gradients)."""
    tensors = [torch.from_numpy(feeds[s.name]).clone() for s in specs]
    for tensor in tensors:
        if track and tensor.is_floating_point():
            tensor.requires_grad_(True)
    return tensors


def _check_output_names(declared: list[str], found: list[str], where: str) -> None:
    if found != declared:
        raise ParityError(
            f"{where} has outputs {', '.join(map(repr, found)) or 'none'} but the model declares "
            f"{', '.join(map(repr, declared))}", stage=_STAGE)


def _errors(reference: np.ndarray, produced: torch.Tensor) -> dict[str, float]:
    """max |Δ| and max |Δ| / max |ref|; integer and bool outputs must match exactly (else the relative error is inf)."""
    exact = not np.issubdtype(np.asarray(reference).dtype, np.floating)
    ref = np.asarray(reference, dtype=np.float64)
    got = produced.detach().to(torch.float64).numpy()
    if ref.shape != got.shape:
        return {"max_abs_err": float("inf"), "max_rel_err": float("inf")}
    if ref.size == 0:
        return {"max_abs_err": 0.0, "max_rel_err": 0.0}
    both_nan = np.isnan(ref) & np.isnan(got)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, counted as an infinite error just below
        delta = np.where(both_nan, 0.0, np.abs(ref - got))
    diff = float(np.nan_to_num(np.max(delta), nan=np.inf))
    if exact:
        return {"max_abs_err": diff, "max_rel_err": 0.0 if diff == 0 else float("inf")}
    scale = float(np.max(np.abs(np.where(both_nan, 0.0, ref))))
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


def _gradient_norms(module: torch.nn.Module, dtypes: dict[str, np.dtype], specs: list[InputSpec], seed: int,
                    first: tuple) -> GradientCheck:
    """Per float input, the norm of d(random projection of the float outputs)/d(input).

    At the declared range first (`first`: measured on the parity probe's own forward pass);
    a model whose outputs saturate there (a softmax over large logits) is tried again on
    inputs scaled down, since activation maximization starts from small inputs anyway.
    Integer and bool outputs have no gradient and are left out; a model with no float
    output has nothing to differentiate and is kept."""
    norms, bad = first
    tried = [specs]
    if bad is None:
        return GradientCheck(norms=norms, scale=1.0)
    for scale in _GRADIENT_SCALES[1:]:
        scaled = [s.with_(value_range=_scaled(s, scale)) for s in specs]
        tried.append(scaled)
        tensors = _probe_tensors(_draw(dtypes, scaled, seed), scaled)
        norms, bad = _gradients_of(_as_list(module(*tensors)), scaled, tensors)
        if bad is None:
            return GradientCheck(norms=norms, scale=scale)
    spec, norm = bad
    index = [s.name for s in specs].index(spec.name)
    ranges = ", ".join(_fmt_range(attempt[index].value_range) for attempt in tried[1:])
    declared = _fmt_range(specs[index].value_range)
    example = f"{spec.name}={'x'.join(map(str, spec.shape))}:{spec.kind or 'image'}:-1..1"
    raise ParityError(
        f"the gradient of the outputs w.r.t. input {spec.name!r} is {'zero' if norm == 0 else 'not finite'} "
        f"on random inputs in the declared range {declared}, and in {ranges} too; activation maximization needs "
        f"a usable gradient. If the model expects inputs in another range, declare it, e.g. --input {example}",
        stage=_STAGE,
    )


@dataclass(frozen=True)
class GradientCheck:
    norms: dict[str, float]
    scale: float
    """The factor the declared ranges were scaled by to get a usable gradient (1.0: as declared)."""


_GRADIENT_SCALES = (1.0, 1e-1, 1e-2, 1e-3)


def _scaled(spec: InputSpec, scale: float) -> tuple[float, float]:
    lo, hi = spec.value_range or DEFAULT_RANGE
    return (lo * scale, hi * scale)


def _fmt_range(value_range) -> str:
    lo, hi = value_range or DEFAULT_RANGE
    return f"{lo:g}..{hi:g}"


def _gradients_of(outputs: list[torch.Tensor], specs: list[InputSpec], tensors: list[torch.Tensor]):
    """(norms, None) when every float input gets a finite non-zero gradient, else (norms, (spec, norm))."""
    floats = [o for o in outputs if o.is_floating_point()]
    if not floats:
        return {}, None
    differentiable = [o for o in floats if o.requires_grad]
    if differentiable:
        generator = torch.Generator().manual_seed(0)
        total = sum((o * torch.rand(o.shape, generator=generator, dtype=o.dtype)).sum() for o in differentiable)
        total.backward()
    norms = {}
    for spec, tensor in zip(specs, tensors):
        if not tensor.is_floating_point():
            continue
        grad = tensor.grad
        norm = float(grad.norm()) if grad is not None else 0.0
        if not np.isfinite(norm) or norm == 0.0:
            return norms, (spec, norm)
        norms[spec.name] = norm
    return norms, None


def _as_list(outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return list(outputs)
