"""A server (in this process, imports in child processes) over a fresh store, shared by a test module."""

from __future__ import annotations

import pytest

from tests.service.helpers import Running, start


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Running:
    running = start(tmp_path_factory.mktemp("reliability") / "store")
    yield running
    running.stop()
