"""ONNX's node conformance cases (onnx.backend.test), run through our converter and through import_model.

Each case is one node with inputs and the outputs ONNX's reference computes. Cases
whose graph is a function's expansion (`*_expanded`) are compositions of other ops
and are left to those ops' own cases.
"""

from __future__ import annotations

import fnmatch
import functools
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch
from onnx import ModelProto, numpy_helper

from kinetoscope.server.importer import InputSpec, import_model
from kinetoscope.server.importer.convert import convert
from kinetoscope.server.importer.graph import infer_shapes

EXCLUSIONS_FILE = Path(__file__).with_name("conformance_exclusions.toml")

# The op types conv and video nets use, by family.
OP_FAMILIES: dict[str, tuple[str, ...]] = {
    "conv": ("Conv", "ConvTranspose"),
    "pool": ("AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "LpPool"),
    "norm": ("BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "LRN",
             "LpNormalization", "MeanVarianceNormalization"),
    "activation": ("Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
                   "Tanh", "Softplus", "Softsign", "Gelu", "Mish", "Swish", "ThresholdedRelu", "Erf", "Clip"),
    "resize": ("Resize", "Upsample", "DepthToSpace", "SpaceToDepth"),
    "pad": ("Pad",),
    "reshape": ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Expand", "Tile", "Shape", "Size",
                "Identity", "Dropout"),
    "reduce": ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "TopK"),
    "elementwise": ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Floor",
                    "Ceil", "Round", "Sign", "Max", "Min", "Mean", "Sum", "Equal", "Greater", "GreaterOrEqual",
                    "Less", "LessOrEqual", "Where", "Not", "And", "Or"),
    "index": ("Gather", "GatherElements", "Slice", "Concat", "Split"),
    "matmul": ("MatMul", "Gemm", "Einsum"),
    "softmax": ("Softmax", "LogSoftmax"),
    "cast": ("Cast", "CastLike", "Constant", "ConstantOfShape", "Range"),
}
OP_TYPES = tuple(op for ops in OP_FAMILIES.values() for op in ops)


@dataclass(frozen=True)
class Case:
    name: str
    op_type: str
    model: ModelProto
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    rtol: float
    atol: float

    @property
    def float_first_input(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], np.ndarray) and self.inputs[0].dtype in (
            np.float32, np.float64, np.float16)


@functools.lru_cache(maxsize=1)
def all_cases() -> dict[str, list[Case]]:
    """op type → its single-node cases (one per data set), built once per process (~10 s)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collected = collect_testcases()
    cases: dict[str, list[Case]] = {op: [] for op in OP_TYPES}
    for test in collected:
        nodes = test.model.graph.node
        if test.kind != "node" or len(nodes) != 1 or nodes[0].op_type not in cases:
            continue
        for index, (inputs, outputs) in enumerate(test.data_sets):
            name = test.name if len(test.data_sets) == 1 else f"{test.name}[{index}]"
            cases[nodes[0].op_type].append(Case(name, nodes[0].op_type, test.model, tuple(inputs), tuple(outputs),
                                                test.rtol, test.atol))
    return cases


@dataclass(frozen=True)
class Exclusion:
    pattern: str
    forms: tuple[str, ...]
    reason: str


@functools.lru_cache(maxsize=1)
def exclusions() -> tuple[Exclusion, ...]:
    table = tomllib.loads(EXCLUSIONS_FILE.read_text())
    return tuple(Exclusion(e["case"], tuple(e.get("forms", FORMS)), e["reason"]) for e in table["exclude"])


FORMS = ("graph", "frozen", "import")
"""graph: the case's model as it is; frozen: every input but the first an initializer, as exported nets
hold them; import: the frozen form through import_model."""


def excluded(name: str, form: str) -> Exclusion | None:
    return next((e for e in exclusions() if form in e.forms and fnmatch.fnmatchcase(name, e.pattern)), None)


def frozen(case: Case) -> ModelProto:
    """The case's model with every input but the first stored as an initializer holding the test's value."""
    model = ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    keep = list(graph.input[:1])
    for value, array in zip(graph.input[1:], case.inputs[1:]):
        graph.initializer.append(numpy_helper.from_array(np.asarray(array), value.name))
    del graph.input[:]
    graph.input.extend(keep)
    return model


def run_converter(model: ModelProto, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Our converter's module on the case's inputs, outputs as numpy."""
    model = infer_shapes(_copy(model))
    module = convert(model)
    with torch.no_grad():
        produced = module(*[torch.from_numpy(np.array(a)) for a in inputs])
    produced = list(produced) if isinstance(produced, (tuple, list)) else [produced]
    return [p.numpy() if isinstance(p, torch.Tensor) else np.asarray(p) for p in produced]


def mismatch(case: Case, produced: Sequence[np.ndarray]) -> str | None:
    """Why `produced` is not the case's expected outputs, or None."""
    if len(produced) != len(case.outputs):
        return f"{len(produced)} outputs, expected {len(case.outputs)}"
    for index, (got, want) in enumerate(zip(produced, case.outputs)):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            return f"output {index}: shape {got.shape}, expected {want.shape}"
        if got.dtype != want.dtype:
            return f"output {index}: dtype {got.dtype}, expected {want.dtype}"
        if np.issubdtype(want.dtype, np.floating):
            try:
                np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=case.rtol,
                                           atol=case.atol)
            except AssertionError as exc:
                return f"output {index}: {str(exc).strip().splitlines()[2] if len(str(exc).splitlines()) > 2 else exc}"
        elif not np.array_equal(got, want):
            return f"output {index}: values differ"
    return None


def _copy(model: ModelProto) -> ModelProto:
    copy = ModelProto()
    copy.CopyFrom(model)
    return copy


def check_converter(case: Case, form: str) -> str | None:
    """None when the converter reproduces the case in `form`, else what went wrong."""
    try:
        model = case.model if form == "graph" else frozen(case)
        inputs = case.inputs if form == "graph" else case.inputs[:1]
        return mismatch(case, run_converter(model, inputs))
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"


def import_declaration(case: Case) -> InputSpec:
    """The case's first input with its shape and, as its range, the span of the test's values."""
    array = case.inputs[0].astype(np.float64)
    finite = array[np.isfinite(array)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    if not lo < hi:
        lo, hi = lo - 1.0, hi + 1.0
    return InputSpec(name=case.model.graph.input[0].name, shape=tuple(array.shape), value_range=(lo, hi))


def check_import(case: Case) -> str | None:
    """None when import_model accepts the frozen form of the case, else its error."""
    try:
        import_model(frozen(case).SerializeToString(), inputs=[import_declaration(case)])
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None
