"""import_model: load → check → onnxruntime reference → normalize → fold BatchNorm → convert → verify → catalog."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np
import torch
from onnx import ModelProto

from kinetoscope.common import find_layer

from .auto_pad import explicit_pads
from .bounds import check_bounds
from .catalog import Layer, build_catalog
from .check import check_model
from .constants import drop_unused_initializers, fold_constants
from .convert import convert
from .errors import ImportFailed, InvalidModel, ParityError, UnsupportedModel
from kinetoscope.model_files import Blob, model_id as compute_model_id

from .files import open_model_files
from .fold_bn import fold_batchnorm
from .graph import infer_shapes, weight_bytes
from .inputs import InputSpec, as_specs
from .layout import describe_inputs
from .options import ImportOptions
from .rewrites import drop_redundant_allowzero
from .load import load_model
from .static_shapes import complete_shapes, make_static
from .verify import Parity, check_parity, start_reference

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
_BACKGROUND_REFERENCE_BYTES = 512 << 20
"""Models with at most this many bytes of weights run onnxruntime's reference beside normalizing, folding and
converting (0.04 s of a 126 MB model's import); larger ones run it first, so that its copy of the weights is gone
before folding makes another (peak memory)."""


@dataclass
class ImportedModel:
    id: str
    """`kinetoscope.model_files.model_id`: the sha256 of the model's bytes and of its external-data files."""
    module: torch.nn.Module
    """Differentiable torch graph; call it with one tensor per input, in `inputs` order."""
    _graph: ModelProto = field(repr=False)
    """`graph`, its large folded weights possibly still in `_unwritten`."""
    inputs: list[InputSpec]
    catalog: list[Layer]
    parity: Parity
    bn_folded: int
    bn_remaining: int
    output_names: list[str]
    metadata: dict[str, str]
    """The file's metadata properties."""
    _unwritten: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Folded weights not yet written into `_graph` (fold_bn.py); the module's weights share them."""
    _writing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def graph(self) -> ModelProto:
        """The normalized, BN-folded ONNX graph the module was converted from, every weight in it.

        Large folded weights are written in on first use: only onnxruntime runs of the folded
        graph (recording) need them in ONNX form, and an import that is only described (a
        sandboxed one) or only maximized never pays for the copy."""
        with self._writing:
            if self._unwritten:
                for tensor in self._graph.graph.initializer:
                    if tensor.name in self._unwritten:
                        tensor.raw_data = self._unwritten[tensor.name].tobytes()
                self._unwritten = {}
        return self._graph

    def layer(self, name: str) -> Layer:
        """A layer by tensor name or producing node name."""
        layer = find_layer(self.catalog, name)
        if layer is not None:
            return layer
        raise KeyError(f"no layer {name!r}; layers are: {', '.join(l.name for l in self.catalog)}")

    def summary(self) -> dict:
        """What `kinetoscope import --json` prints."""
        return {
            "id": self.id,
            "inputs": [spec.to_json() for spec in self.inputs],
            "layers": len(self.catalog),
            "parity": {"max_abs_err": self.parity.max_abs_err, "max_rel_err": self.parity.max_rel_err},
            "bn_folded": self.bn_folded,
            "bn_remaining": self.bn_remaining,
        }


def import_model(
    model: bytes | str | Path,
    *,
    inputs: Sequence[InputSpec | str] | None = None,
    external_data: Mapping[str, bytes] | None = None,
    options: ImportOptions = ImportOptions(),
    progress: Callable[[str], None] | None = None,
) -> ImportedModel:
    """Import an ONNX model from bytes (or a path, whose folder supplies external data).

    `progress`, if given, is called with the name of each stage as it starts.
    """
    say = progress or (lambda stage: None)
    parsed = None
    if isinstance(model, (str, Path)):
        files = open_model_files(Path(model))
        data, parsed = files.data, files.parsed
        external_data = {**files.external, **(external_data or {})}
    else:
        data = bytes(model)
    model_id = _hash_beside(data, external_data)
    limits = options.limits
    say("load")
    graph = load_model(data, external_data, limits, parsed=parsed)
    del parsed
    reload = _reloader(model, data, external_data, limits)
    del data  # a path's bytes are read again only to locate a divergence
    say("check")
    check_model(graph, limits)
    specs = make_static(graph, as_specs(inputs))
    infer_shapes(graph)
    check_bounds(graph, limits)
    say("reference")
    described = {s.name: s for s in describe_inputs(graph, specs)}
    probe = [described[name] for name in _input_order(graph)]
    background = weight_bytes(graph) <= _BACKGROUND_REFERENCE_BYTES
    reference = _guarded(lambda: start_reference(graph, probe, reload, options.seed, background=background))

    try:
        say("normalize")
        fold_constants(graph, limits)
        explicit_pads(graph)
        drop_redundant_allowzero(graph)
        infer_shapes(graph)
        specs = {s.name: s for s in describe_inputs(graph, specs)}
        say("fold")
        unwritten: dict[str, np.ndarray] = {}
        report = fold_batchnorm(graph, unwritten) if options.fold_batchnorm else None
        drop_unused_initializers(graph)
        infer_shapes(graph)
        complete_shapes(graph, limits)

        say("convert")
        module = _convert(graph, unwritten)
    except Exception:
        _guarded(reference)  # what onnxruntime found wrong with the original model is reported first, as before
        raise
    ordered = [specs[name] for name in _input_order(graph)]
    say("verify")
    parity = _guarded(lambda: check_parity(_guarded(reference), reload, graph, module, ordered, tolerance=options.tolerance,
                                           seed=options.seed))
    say("catalog")
    catalog = build_catalog(graph, ordered)
    return ImportedModel(
        id=model_id(),
        module=module,
        _graph=graph,
        inputs=ordered,
        catalog=catalog,
        parity=parity,
        bn_folded=report.folded if report else 0,
        bn_remaining=report.remaining if report else 0,
        output_names=[out.name for out in graph.graph.output],
        metadata={prop.key: prop.value for prop in graph.metadata_props},
        _unwritten=_still_in(graph, unwritten),
    )


def _still_in(graph: ModelProto, unwritten: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The unwritten weights the graph still has initializers for (dropping unused ones may have removed some)."""
    names = {tensor.name for tensor in graph.graph.initializer}
    return {name: values for name, values in unwritten.items() if name in names}


def _hash_beside(data: bytes, external_data: Mapping[str, Blob] | None) -> Callable[[], str]:
    """The model id (`model_files.model_id`), hashed on another thread while the import goes on
    (hashlib lets go of the GIL)."""
    digest: list[str] = []
    worker = threading.Thread(target=lambda: digest.append(compute_model_id(data, external_data)), daemon=True)
    worker.start()

    def model_id() -> str:
        worker.join()
        return digest[0]

    return model_id


def _reloader(model: bytes | str | Path, data: bytes, external_data, limits) -> Callable[[], ModelProto]:
    """The original model again, parsed anew: kept as its source, not as a second parsed copy of every weight."""
    if isinstance(model, (str, Path)):
        return lambda: load_model(Path(model).read_bytes(), external_data, limits)
    return lambda: load_model(data, external_data, limits)


def _convert(graph: ModelProto, unwritten: dict[str, np.ndarray]) -> torch.nn.Module:
    """convert(), with a failure inside onnx2torch on a graph that passed every check reported as unsupported."""
    try:
        return convert(graph, unwritten)
    except ImportFailed:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, SyntaxError, RuntimeError) as exc:
        _LOGGER.warning("the converter failed on a checked graph", exc_info=exc)
        raise UnsupportedModel(f"the converter could not build a torch graph from this model "
                               f"({type(exc).__name__}: {_first_line(str(exc))})", stage="convert") from None


def _guarded(run: Callable[[], T]) -> T:
    """Verification, with every failure inside it reported as an import error of the verify stage.

    onnx's checker and shape inference let some contradictions through (a Conv whose
    weight has other channels than its input); onnxruntime finds them when it runs.
    A converted module that fails to run is a converter defect, reported as such.
    """
    try:
        return run()
    except ImportFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors have no common public base
        if type(exc).__module__.startswith("onnxruntime"):
            raise InvalidModel(f"onnxruntime cannot run the model: {_first_line(str(exc))}", stage="verify") from None
        _LOGGER.warning("verification failed on a converted graph", exc_info=exc)
        raise ParityError(f"the torch graph could not be verified against onnxruntime "
                          f"({type(exc).__name__}: {_first_line(str(exc))})", stage="verify") from None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:1000]


def _input_order(graph: ModelProto) -> list[str]:
    weights = {init.name for init in graph.graph.initializer}
    return [value.name for value in graph.graph.input if value.name not in weights]
