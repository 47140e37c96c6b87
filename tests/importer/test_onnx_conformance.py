"""ONNX's own node conformance cases for every op type a conv or video net uses.

Each case runs (a) through our converter, in the graph's own form and with every input
but the first frozen as an initializer (as exported nets hold weights), compared to the
outputs ONNX's reference computed; and (b) through import_model (frozen form, first
input float), which verifies against onnxruntime. What is excluded, and why, is listed
in conformance_exclusions.toml; an excluded case that passes fails the run, so the
table stays true. import_model over every case takes about a minute on two cores: the
default run imports a representative subset (the first two cases of each op type) and
`-m slow` imports them all.
"""

from __future__ import annotations

import fnmatch
import logging

import onnxruntime as ort
import pytest

from .conformance import (
    OP_TYPES,
    all_cases,
    check_converter,
    check_import,
    excluded,
    exclusions,
)

ort.set_default_logger_severity(3)
_SUBSET = 2


@pytest.fixture(autouse=True)
def _quiet_importer():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _run(op: str, forms: tuple[str, ...], limit: int | None = None) -> None:
    failures, stale = [], []
    cases = all_cases()[op]
    assert cases, f"ONNX has no node cases for {op}"
    for form in forms:
        chosen = [c for c in cases if _applies(c, form)]
        if form == "import" and limit is not None:
            chosen = chosen[:limit]
        for case in chosen:
            problem = check_import(case) if form == "import" else check_converter(case, form)
            exclusion = excluded(case.name, form)
            if problem and not exclusion:
                failures.append(f"{form} {case.name}: {problem}")
            elif not problem and exclusion:
                stale.append(f"{form} {case.name} passes; remove its exclusion ({exclusion.reason})")
    assert not failures + stale, "\n".join(failures + stale)


def _applies(case, form: str) -> bool:
    if form == "frozen":
        return len(case.inputs) > 1
    if form == "import":
        return case.float_first_input
    return True


@pytest.mark.parametrize("op", OP_TYPES)
def test_converter_reproduces_onnx_reference(op: str) -> None:
    _run(op, ("graph", "frozen"))


@pytest.mark.parametrize("op", OP_TYPES)
def test_import_accepts_a_representative_subset(op: str) -> None:
    _run(op, ("import",), limit=_SUBSET)


@pytest.mark.slow
@pytest.mark.parametrize("op", OP_TYPES)
def test_import_accepts_every_case(op: str) -> None:
    _run(op, ("import",))


def test_every_exclusion_names_a_case_and_gives_a_reason() -> None:
    names = [case.name for cases in all_cases().values() for case in cases]
    for exclusion in exclusions():
        assert exclusion.reason.strip(), exclusion.pattern
        assert set(exclusion.forms) <= {"graph", "frozen", "import"}, exclusion
        assert any(fnmatch.fnmatchcase(name, exclusion.pattern) for name in names), f"{exclusion.pattern} matches no case"
