import os

# Two cores: keep torch and onnxruntime from oversubscribing them in tests.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import sys

import pytest

_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """Leave without the interpreter's teardown once Ray has run in this process.

    Ray's core worker and grpc keep native threads that can crash the interpreter's
    final teardown (SIGSEGV, seen about once in three runs of the Ray tests on 2 cores)
    after every test has passed and the summary is printed; the results are final here."""
    if "ray" in sys.modules and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
